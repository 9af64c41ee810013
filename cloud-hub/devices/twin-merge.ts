import type { DeviceModel, DeviceStatus } from '../../shared/api/index.js';
import type { DevicePresenceReport, DeviceReport } from '../../shared/protocol/frames.js';
import type { RejectReason } from '../../shared/devices/topics.js';
import { propertyOf, valueProblem } from './property-check.js';

export interface MergeResult {
  status: DeviceStatus;
  /** Why the whole report was ignored (stale version), if it was. */
  ignored?: RejectReason;
  /** Properties dropped because they do not fit the model, with the reason. */
  dropped: { property: string; reason: RejectReason }[];
}

type Reported = NonNullable<DeviceStatus['reported']>[string];

/** Code-unit order of two strings: the same on every host (localeCompare is not). */
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const timeOf = (iso: string | undefined): number => {
  const ms = iso === undefined ? Number.NaN : Date.parse(iso);
  return Number.isNaN(ms) ? -Infinity : ms;
};

/**
 * The order of two values of one property: by device version (a value without one is older than
 * any with one), then timestamp, then reporting node name. Values of different nodes are always
 * ordered, so the merge gives the same twin whatever order the agents' reports arrive in; two
 * values equal in all three come from one node, and the later in its outbox order wins (0 here:
 * the newcomer replaces the stored one).
 */
export function compareReported(a: Reported, b: Reported): number {
  return (a.version ?? -1) - (b.version ?? -1)
    || timeOf(a.timestamp) - timeOf(b.timestamp)
    || compareText(a.node ?? '', b.node ?? '');
}

const later = (a: string | undefined, b: string): string => (timeOf(b) >= timeOf(a) ? b : a ?? b);

/** lastSeen is the newest time any report showed; node the node that showed it (by name on a tie). */
function seenBy(status: DeviceStatus, at: string, node: string): Pick<DeviceStatus, 'lastSeen' | 'node'> {
  const order = timeOf(at) - timeOf(status.lastSeen) || compareText(node, status.node ?? '');
  return order > 0 || status.lastSeen === undefined || status.node === undefined ? { lastSeen: timeOf(at) >= timeOf(status.lastSeen) ? at : status.lastSeen ?? at, node } : { ...(status.lastSeen !== undefined ? { lastSeen: status.lastSeen } : {}), ...(status.node !== undefined ? { node: status.node } : {}) };
}

/**
 * Merges one reported-twin item into a Device status, per property: the newer value by
 * compareReported wins, so concurrent reports of two agents lose nothing and commute. A report
 * none of whose values is newer than what is stored, and whose version is below
 * status.reportedVersion, counts as stale (it still shows the device was seen). Values that do not fit the model (when there is one)
 * are dropped; the rest of the report still applies. reportedVersion and observedDesired only grow.
 */
export function mergeReport(status: DeviceStatus, report: DeviceReport['body'], ctx: { node: string; model: DeviceModel | undefined; now: string }): MergeResult {
  const dropped: MergeResult['dropped'] = [];
  const reported = { ...(status.reported ?? {}) };
  let newest: string | undefined;
  let won = 0;
  for (const [name, entry] of Object.entries(report.reported)) {
    if (ctx.model) {
      const prop = propertyOf(ctx.model, name);
      const problem = prop ? valueProblem(prop, entry.value) : { reason: 'unknown-property' as const };
      if (problem) { dropped.push({ property: name, reason: problem.reason }); continue; }
    }
    const version = entry.version ?? report.version;
    const candidate: Reported = { value: entry.value, timestamp: entry.timestamp, ...(version !== undefined ? { version } : {}), node: ctx.node };
    newest = later(newest, entry.timestamp);
    const current = reported[name];
    if (current !== undefined && compareReported(candidate, current) < 0) continue;
    reported[name] = candidate;
    won++;
  }
  const stale = report.version !== undefined && status.reportedVersion !== undefined && report.version < status.reportedVersion && won === 0;
  const next: DeviceStatus = { ...status, reported, ...seenBy(status, newest ?? ctx.now, ctx.node) };
  if (report.version !== undefined) next.reportedVersion = Math.max(report.version, status.reportedVersion ?? 0);
  if (report.observedDesired !== undefined) next.observedDesired = Math.max(report.observedDesired, status.observedDesired ?? 0);
  return { status: next, dropped, ...(stale ? { ignored: 'stale-version' as const } : {}) };
}

/**
 * Applies a presence item: the newest by its time wins (online before offline at the same
 * instant), so a device moving between two agents of its unit ends up with the state of the
 * latest connection whichever report arrives last. lastSeen never goes back.
 */
export function mergePresence(status: DeviceStatus, presence: DevicePresenceReport['body'], node: string): DeviceStatus {
  const order = timeOf(presence.at) - timeOf(status.presenceAt) || (presence.online ? 1 : 0) - (status.online ? 1 : 0);
  if (status.presenceAt !== undefined && order < 0) return { ...status, ...seenBy(status, presence.at, node) };
  return { ...status, online: presence.online, presenceAt: presence.at, ...seenBy(status, presence.at, node) };
}
