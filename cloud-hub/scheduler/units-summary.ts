import type { UnitAppStatus } from '../../shared/api/index.js';

/** Longest status.unitsSummary (the schema allows 1024); the rest of the units is counted, not listed. */
const MAX_SUMMARY = 1000;

/**
 * The compact EdgeApp status a `kubectl get edgeapps` column shows: ready/desired instances over
 * all units ("3/4") and per unit ("site-a 2/2, site-b 1/2"), units in the order given.
 */
export function unitsSummary(units: readonly UnitAppStatus[]): { ready: string; unitsSummary: string } {
  let ready = 0;
  let desired = 0;
  const parts: string[] = [];
  let length = 0;
  let left = 0;
  for (const u of units) {
    ready += u.ready;
    desired += u.desired;
    const part = `${u.unit} ${u.ready}/${u.desired}`;
    if (left === 0 && length + part.length + 2 <= MAX_SUMMARY - 16) {
      parts.push(part);
      length += part.length + 2;
    } else {
      left++;
    }
  }
  return { ready: `${ready}/${desired}`, unitsSummary: parts.join(', ') + (left > 0 ? `, +${left} more` : '') };
}
