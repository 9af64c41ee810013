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
  /** Missing indexes to create (replicas, and surge indexes >= replicas at the target). */
  create: number[];
  /** Existing indexes to delete: scale-down leftovers, surge instances of an earlier target, all surge instances once the unit is done. */
  delete: number[];
  /** Every replica exists, runs the target and is available; no surge instance is left. */
  done: boolean;
}

/**
 * One reconcile step of a unit. Missing replicas are created at once (they are unavailable
 * anyway: the first rollout of a unit creates everything). Every removal of an available instance
 * (an update, or deleting an instance at an index >= replicas) happens only while at least
 * `replicas - maxUnavailable` instances stay available, counting all indexes: not-available ones
 * go first (that costs nothing). With maxSurge, up to maxSurge extra instances at indexes >=
 * replicas run the target meanwhile and are deleted when the unit is done. Any other extra
 * instance (a surge of an earlier target, a replica left by a scale-down) is deleted as soon as
 * the budget allows: it may be what pays for an update still in flight.
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
  const minAvailable = replicas - budget.maxUnavailable;
  let available = args.slots.filter((s) => s.available).length;
  /** Takes one available instance away if the budget allows it. */
  const spend = (s: Slot): boolean => {
    if (!s.available) return true;
    if (available - 1 < minAvailable) return false;
    available--;
    return true;
  };

  let surgeKept = 0;
  const unwanted: Slot[] = [];
  for (const s of extras) {
    if (s.atTarget && surgeKept < budget.maxSurge) surgeKept++;
    else unwanted.push(s);
  }
  // Not available first, then not on the target, then the highest index.
  unwanted.sort((a, b) => Number(a.available) - Number(b.available) || Number(a.atTarget) - Number(b.atTarget) || b.index - a.index);
  for (const s of unwanted) if (spend(s)) plan.delete.push(s.index);

  // A new surge instance only once no extra beyond it exists (deleted ones included: they may still run).
  const surgeWanted = steps ? Math.min(budget.maxSurge, old.length) : 0;
  let surge = extras.length;
  for (let i = replicas; surge < surgeWanted; i++) {
    if (byIndex.has(i)) continue;
    plan.create.push(i);
    surge++;
  }
  if (!steps) return plan;
  const order = [...old].sort((a, b) => Number(a.available) - Number(b.available) || a.index - b.index);
  for (const s of order) {
    if (!spend(s)) break;
    plan.update.push(s.index);
  }
  return plan;
}
