import type { Device, DeviceModel, DeviceStatus } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { DevicePresenceReport, DeviceReport, TelemetryReport } from '../../shared/protocol/frames.js';
import type { ObjectCache } from '../cache/object-cache.js';
import type { Store } from '../store/store.js';
import type { DeviceMetrics } from './device-metrics.js';
import { isDeviceHome, retentionOf, type DeviceHomeScope } from './device-scope.js';
import type { TelemetryStore, TelemetryRow } from './telemetry-store.js';
import { mergePresence, mergeReport } from './twin-merge.js';

export type DeviceItem = DeviceReport | TelemetryReport | DevicePresenceReport;
type Rejection = { seq: number; code: string; message: string };

export interface DeviceReportsDeps {
  store: Store;
  cache: ObjectCache;
  telemetry: TelemetryStore;
  metrics: DeviceMetrics;
  log: Logger;
  now?: () => number;
}

/**
 * Stores the device items of one report frame. Node authorization: a node reports only about
 * devices whose home it may be. Twin and presence items are folded in memory and written once
 * per device per frame (a node may send thousands a second); telemetry rows go to the telemetry
 * store in one transaction per frame.
 */
export class DeviceReports {
  constructor(private readonly deps: DeviceReportsDeps) {}

  async handle(scope: DeviceHomeScope, items: readonly DeviceItem[]): Promise<{ rejected: Rejection[] }> {
    const { cache, metrics } = this.deps;
    const nowIso = new Date((this.deps.now ?? Date.now)()).toISOString();
    const rejected: Rejection[] = [];
    const statuses = new Map<string, { before: DeviceStatus | undefined; status: DeviceStatus }>();
    const rows: TelemetryRow[] = [];
    const origin = cache.get('EdgeNode', scope.node)?.metadata.uid ?? scope.node;
    const refuse = (item: DeviceItem, code: string, reason: string, message: string) => {
      rejected.push({ seq: item.seq, code, message });
      metrics.reportsRefused.inc({ reason });
    };
    for (const item of items) {
      const device = cache.get('Device', item.body.device) as Device | undefined;
      if (!device) { refuse(item, 'OUTPOST_NOT_FOUND', 'unknown-device', `device ${item.body.device} does not exist`); continue; }
      if (!isDeviceHome(device, scope)) { refuse(item, 'OUTPOST_FORBIDDEN', 'not-home', `node ${scope.node} is not a home of device ${item.body.device}`); continue; }
      if (item.kind === 'telemetry') {
        rows.push({ device: device.metadata.name, node: scope.node, origin, seq: item.seq, timestamp: item.body.timestamp, values: item.body.values });
        continue;
      }
      const entry = statuses.get(device.metadata.name) ?? (await this.current(device.metadata.name));
      if (!entry) { refuse(item, 'OUTPOST_NOT_FOUND', 'unknown-device', `device ${item.body.device} does not exist`); continue; }
      statuses.set(device.metadata.name, entry);
      if (item.kind === 'device-presence') {
        entry.status = mergePresence(entry.status, item.body, scope.node);
        continue;
      }
      const model = cache.get('DeviceModel', device.spec.model) as DeviceModel | undefined;
      const merged = mergeReport(entry.status, item.body, { node: scope.node, model, now: nowIso });
      // A stale report is acknowledged (not refused): re-sending it would never make it fresh.
      if (merged.ignored) metrics.reportsRefused.inc({ reason: merged.ignored });
      for (const d of merged.dropped) metrics.reportsRefused.inc({ reason: d.reason });
      entry.status = merged.status;
    }
    if (rows.length > 0) {
      const { stored, duplicates } = this.deps.telemetry.append(rows, (name) => retentionOf(cache.get('Device', name) as Device | undefined));
      metrics.telemetryStored.inc(stored);
      metrics.telemetryDuplicates.inc(duplicates);
    }
    for (const [name, { before, status }] of statuses) {
      if (JSON.stringify(before) === JSON.stringify(status)) continue;
      try {
        await this.writeStatus(name, status);
        metrics.statusWrites.inc();
      } catch (err) {
        if (!isOutpostError(err)) throw err; // storage failure: no ack, the agent retries
        this.deps.log.warn({ device: name, err }, 'device status not written');
      }
    }
    // One line per frame, not per item: a misconfigured agent may send thousands.
    if (rejected.length > 0) this.deps.log.warn({ node: scope.node, refused: rejected.length, first: rejected[0] }, 'device report items refused');
    return { rejected };
  }

  /**
   * Writes the reported side of the status; `message` stays what is stored (the model warning is
   * the apply path's). The resourceVersion precondition makes a concurrent warning write retry here.
   */
  private async writeStatus(name: string, status: DeviceStatus): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const fresh = (await this.deps.store.get('Device', name)) as Device | undefined;
      if (!fresh) return;
      const { message: _ours, ...rest } = status;
      const message = fresh.status?.message;
      try {
        await this.deps.store.updateStatus('Device', name, message === undefined ? rest : { ...rest, message }, { resourceVersion: fresh.metadata.resourceVersion ?? '' });
        return;
      } catch (err) {
        if (!isOutpostError(err, 'CONFLICT') || attempt >= 5) throw err;
      }
    }
  }

  /** The stored status (not the cache's, which may lag this session's own last write). */
  private async current(name: string): Promise<{ before: DeviceStatus | undefined; status: DeviceStatus } | undefined> {
    const stored = (await this.deps.store.get('Device', name)) as Device | undefined;
    return stored ? { before: stored.status, status: stored.status ?? {} } : undefined;
  }
}
