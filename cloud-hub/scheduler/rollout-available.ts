import type { Instance } from '../../shared/api/index.js';

/** An updated instance that restarted since its update counts as available only after this long up. */
export const RESTARTED_MIN_UP_SECONDS = 30;

/** Ready, and running what its spec asks (the agent may still run the previous template). */
export function runsSpecReady(i: Instance): boolean {
  return i.status?.ready === true && i.status.templateHash === i.spec.templateHash;
}

/**
 * Whether an instance running the rollout's target counts as available for the next step: ready,
 * running its spec, up for `minReadySeconds`, and up for at least 30 s if it restarted since its
 * template started (the agents reset `restarts` when they replace the process or container). A
 * crash-looping process that is ready for a moment between restarts so never lets a step go.
 * `startedAt` is the agent's clock. `at`: when it will count if nothing changes (for a wake-up).
 */
export function targetAvailability(i: Instance, minReadySeconds: number, now: number): { available: boolean; at?: number } {
  if (!runsSpecReady(i)) return { available: false };
  const restarted = (i.status?.restarts ?? 0) > 0;
  const needMs = (restarted ? Math.max(minReadySeconds, RESTARTED_MIN_UP_SECONDS) : minReadySeconds) * 1000;
  if (needMs === 0) return { available: true };
  const started = i.status?.startedAt ? Date.parse(i.status.startedAt) : NaN;
  if (Number.isNaN(started)) return { available: false };
  const at = started + needMs;
  return now >= at ? { available: true } : { available: false, at };
}

/** Why an instance on the target does not count as available yet (for the Failed message). */
export function notAvailableWhy(i: Instance, minReadySeconds: number): string {
  if (!i.spec.node) return 'not placed';
  const st = i.status;
  if (!runsSpecReady(i)) return `${st?.phase ?? 'Pending'}, not ready${st?.message ? ` (${st.message})` : ''}`;
  const restarts = st?.restarts ?? 0;
  if (restarts > 0) return `ready, but restarted ${restarts} time(s): counts once up for ${Math.max(minReadySeconds, RESTARTED_MIN_UP_SECONDS)}s`;
  return `ready, not yet for minReadySeconds ${minReadySeconds}`;
}
