import type { EdgeApp, UnitAppStatus } from '../../shared/api/index.js';

/** Where an app's rollout stands, from its status (what `outpost rollout status` waits for). */
export type RolloutVerdict = { state: 'complete' } | { state: 'failed'; units: UnitAppStatus[] } | { state: 'progressing' };

/**
 * Complete: the hub has seen the app's latest generation (and the configs it uses as of
 * `configRevision`: see configRevisionOf) and every selected unit reports
 * Complete for the current revision. Failed: some unit's rollout to the current revision failed.
 */
export function rolloutVerdict(app: EdgeApp, configRevision = 0): RolloutVerdict {
  const st = app.status;
  if (!st || st.observedGeneration !== (app.metadata.generation ?? 0)) return { state: 'progressing' };
  // A config change made just before: the hub has not taken it into account yet.
  if ((st.observedConfigRevision ?? 0) < configRevision) return { state: 'progressing' };
  const units = st.units ?? [];
  const failed = units.filter((u) => u.rollout === 'Failed' && u.updateRevision === st.revision);
  if (failed.length > 0) return { state: 'failed', units: failed };
  if (units.every((u) => u.rollout === 'Complete' && u.updateRevision === st.revision)) return { state: 'complete' };
  return { state: 'progressing' };
}

/** One plain line per unit: `site-a: 2/3 updated, 3 ready, revision 4, Progressing`. */
export function unitLine(u: UnitAppStatus): string {
  const extra = u.message && u.rollout !== 'Complete' ? ` (${u.message})` : '';
  return `${u.unit}: ${u.updated}/${u.desired} updated, ${u.ready} ready, revision ${u.updateRevision ?? '-'}, ${u.rollout ?? 'Pending'}${extra}`;
}
