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

const later = (a: string | undefined, b: string): string => (a === undefined || Date.parse(b) >= Date.parse(a) || Number.isNaN(Date.parse(a)) ? b : a);

/**
 * Merges one reported-twin item into a Device status. The edge wins: items arrive in the agent's
 * outbox order, so per property the later item wins. A report whose version is below
 * status.reportedVersion is stale and changes nothing. Values that do not fit the model (when
 * there is one) are dropped; the rest of the report still applies.
 */
export function mergeReport(status: DeviceStatus, report: DeviceReport['body'], ctx: { node: string; model: DeviceModel | undefined; now: string }): MergeResult {
  if (report.version !== undefined && status.reportedVersion !== undefined && report.version < status.reportedVersion) {
    return { status, ignored: 'stale-version', dropped: [] };
  }
  const dropped: MergeResult['dropped'] = [];
  const reported = { ...(status.reported ?? {}) };
  let newest: string | undefined;
  for (const [name, entry] of Object.entries(report.reported)) {
    if (ctx.model) {
      const prop = propertyOf(ctx.model, name);
      const problem = prop ? valueProblem(prop, entry.value) : { reason: 'unknown-property' as const };
      if (problem) { dropped.push({ property: name, reason: problem.reason }); continue; }
    }
    reported[name] = entry;
    newest = later(newest, entry.timestamp);
  }
  const next: DeviceStatus = { ...status, reported, node: ctx.node, lastSeen: later(status.lastSeen, newest ?? ctx.now) };
  if (report.version !== undefined) next.reportedVersion = Math.max(report.version, status.reportedVersion ?? 0);
  if (report.observedDesired !== undefined) next.observedDesired = report.observedDesired;
  return { status: next, dropped };
}

/** Applies a presence item: online follows the item; lastSeen never goes back. */
export function mergePresence(status: DeviceStatus, presence: DevicePresenceReport['body'], node: string): DeviceStatus {
  return { ...status, online: presence.online, node, lastSeen: later(status.lastSeen, presence.at) };
}
