import type { UnitAppStatus, UnitRolloutPhase } from '../../shared/api/index.js';

/** Progress deadline when the app sets none, seconds. */
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

export interface PhaseInput {
  now: number;
  /** The app's current revision (what the unit rolls to). */
  revision: number;
  /** The unit's status from the previous pass (the rollout's memory across passes and hub restarts). */
  prev: UnitAppStatus | undefined;
  /** Every replica runs the target and is available, and nothing is left to do. */
  done: boolean;
  /** Every replica's spec asks for the target already (nothing left to write). */
  allAtTarget: boolean;
  paused: boolean;
  /** Some node of the unit is Ready (otherwise the unit waits for its nodes). */
  hasReadyNode: boolean;
  /** The unit got further than ever before in this rollout (see advanceMark); true when nothing is known. */
  progressed: boolean;
  /** What the unit rolls to now (status.units[].targetHash): a change within one revision is a new rollout. */
  targetHash: string;
  deadlineSeconds: number;
  /** Says what is stuck, for the Failed message. */
  describeStuck: () => string;
}

export interface PhaseResult {
  phase: UnitRolloutPhase;
  /** Whether update steps may be taken in this pass. */
  steps: boolean;
  progressAt: string;
  /** The revision the unit runs completely. */
  completedRevision: number | undefined;
  message?: string;
  /** When the deadline would fire, ms since epoch (for a wake-up), if Progressing. */
  deadlineAt?: number;
}

/**
 * The rollout phase of one unit. Failed sticks until the app's revision changes (a new template,
 * or `rollout undo`) or the unit's target does (a config change with restartOnConfigChange: the
 * target hash is kept in the unit's status, so this holds across hub restarts). Paused and Waiting do not run the deadline: the clock restarts when they end.
 * A unit that completed a revision stays Complete while its instances' specs are on target (an
 * instance that crashes later is not a failed rollout).
 */
export function rolloutPhase(p: PhaseInput): PhaseResult {
  const nowIso = new Date(p.now).toISOString();
  const sameRollout = p.prev?.updateRevision === p.revision && p.prev.targetHash === p.targetHash;
  const prevCompleted = p.prev?.revision;
  const stillComplete = sameRollout && p.prev?.rollout === 'Complete' && p.allAtTarget;
  if (p.done || stillComplete) return { phase: 'Complete', steps: true, progressAt: (sameRollout && p.prev?.rollout === 'Complete' && p.prev.progressAt) || nowIso, completedRevision: p.revision };
  if (sameRollout && p.prev?.rollout === 'Failed') {
    return { phase: 'Failed', steps: false, progressAt: p.prev.progressAt ?? nowIso, completedRevision: prevCompleted, ...(p.prev.message ? { message: p.prev.message } : {}) };
  }
  // Since when it is paused or waiting (kept, so that passes for other reasons write nothing new).
  const since = (phase: UnitRolloutPhase) => (sameRollout && p.prev?.rollout === phase && p.prev.progressAt) || nowIso;
  if (p.paused) return { phase: 'Paused', steps: false, progressAt: since('Paused'), completedRevision: prevCompleted };
  if (!p.hasReadyNode) return { phase: 'Waiting', steps: true, progressAt: since('Waiting'), completedRevision: prevCompleted, message: 'no Ready node in the unit: the rollout continues when its nodes are back' };
  const restart = !sameRollout || p.prev?.rollout !== 'Progressing' || !p.prev.progressAt || p.progressed;
  const progressAt = restart ? nowIso : (p.prev?.progressAt ?? nowIso);
  const deadlineAt = Date.parse(progressAt) + p.deadlineSeconds * 1000;
  if (!restart && p.now >= deadlineAt) {
    return { phase: 'Failed', steps: false, progressAt, completedRevision: prevCompleted, message: `no progress for ${p.deadlineSeconds}s: ${p.describeStuck()}`.slice(0, 2048) };
  }
  return { phase: 'Progressing', steps: true, progressAt, completedRevision: prevCompleted, deadlineAt };
}

/** How far one rollout of a unit has got: the most instances ever updated and ever available on the target. */
export interface ProgressMark {
  /** Identifies the rollout (revision and target hash): a new one starts from zero. */
  rollout: string;
  updated: number;
  available: number;
}

/**
 * Only forward moves count as progress: an instance that flaps between ready and not ready must not
 * restart the deadline clock each time. Without a previous mark (a hub restart) it counts as progress.
 */
export function advanceMark(prev: ProgressMark | undefined, now: ProgressMark): { mark: ProgressMark; progressed: boolean } {
  if (!prev || prev.rollout !== now.rollout) return { mark: now, progressed: true };
  const mark = { rollout: now.rollout, updated: Math.max(prev.updated, now.updated), available: Math.max(prev.available, now.available) };
  return { mark, progressed: mark.updated > prev.updated || mark.available > prev.available };
}
