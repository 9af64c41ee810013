import type { Rollout } from '../../shared/api/index.js';

/** One instance slot of a unit as the rollout sees it. */
export interface Slot {
  index: number;
  /** Its spec already asks for the unit's current target (template, hash, revision). */
  atTarget: boolean;
  /** Ready, and running what its spec asks (status.templateHash === spec.templateHash). */
  available: boolean;
}

export interface RolloutBudget {
  maxUnavailable: number;
  maxSurge: number;
}

/**
 * maxSurge: int or percent of replicas rounded up; maxUnavailable: rounded down, and at least 1
 * when maxSurge is 0 (otherwise nothing could ever be replaced).
 */
export function rolloutBudget(rollout: Rollout | undefined, replicas: number): RolloutBudget {
  const resolve = (v: number | string | undefined, dflt: number, round: (x: number) => number) => {
    if (v === undefined) return dflt;
    if (typeof v === 'number') return v;
    return round((Number(v.slice(0, -1)) * replicas) / 100);
  };
  const maxSurge = resolve(rollout?.maxSurge, 0, Math.ceil);
  let maxUnavailable = resolve(rollout?.maxUnavailable, 1, Math.floor);
  if (maxSurge === 0) maxUnavailable = Math.max(1, maxUnavailable);
  return { maxUnavailable, maxSurge };
}

export interface StepPlan {
  /** Existing instances to move to the target now (the agent replaces them). */
  update: number[];
  /** Missing indexes to create at the target (replicas, and surge indexes >= replicas). */
  create: number[];
  /** Existing indexes to delete: scale-down leftovers, and surge instances once the unit is done. */
  delete: number[];
  /** Every replica exists, runs the target and is available; no surge instance is left. */
  done: boolean;
}

/**
 * One reconcile step of a unit. Missing replicas are created at once (they are unavailable
 * anyway: the first rollout of a unit creates everything). Existing ones are updated only while
 * `replicas - available` stays <= maxUnavailable after the update: not-available old instances
 * first (replacing them costs nothing), then available ones. With maxSurge, extra instances at
 * indexes >= replicas run the target meanwhile and are deleted when the unit is done.
 * `steps: false` (paused, failed) creates missing replicas but updates and surges nothing.
 */
export function planStep(args: { replicas: number; budget: RolloutBudget; slots: Slot[]; steps: boolean }): StepPlan {
  const { replicas, budget, steps } = args;
  const byIndex = new Map(args.slots.map((s) => [s.index, s]));
  const primaries = args.slots.filter((s) => s.index < replicas);
  const extras = args.slots.filter((s) => s.index >= replicas).sort((a, b) => a.index - b.index);
  const done = primaries.length === replicas && primaries.every((s) => s.atTarget && s.available);
  if (done) return { update: [], create: [], delete: extras.map((s) => s.index), done: extras.length === 0 };

  const plan: StepPlan = { update: [], create: [], delete: [], done: false };
  for (let i = 0; i < replicas; i++) if (!byIndex.has(i)) plan.create.push(i);
  const old = primaries.filter((s) => !s.atTarget);
  // Surge instances run the target, at most maxSurge of them; new ones only while old ones remain.
  // Kept until the unit is done: deleting one earlier would take availability away mid-rollout.
  const keptExtras: Slot[] = [];
  for (const s of extras) {
    if (s.atTarget && keptExtras.length < budget.maxSurge) keptExtras.push(s);
    else plan.delete.push(s.index);
  }
  const surgeWanted = steps ? Math.min(budget.maxSurge, old.length) : 0;
  let surge = keptExtras.length;
  for (let i = replicas; surge < surgeWanted; i++) {
    if (byIndex.has(i)) continue;
    plan.create.push(i);
    surge++;
  }
  if (!steps) return plan;
  let available = primaries.filter((s) => s.available).length + keptExtras.filter((s) => s.available).length;
  const order = [...old].sort((a, b) => Number(a.available) - Number(b.available) || a.index - b.index);
  for (const s of order) {
    if (s.available) {
      if (replicas - (available - 1) > budget.maxUnavailable) break;
      available--;
    }
    plan.update.push(s.index);
  }
  return plan;
}
