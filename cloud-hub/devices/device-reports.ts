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
import type { TwinConvergence } from './twin-convergence.js';

export type DeviceItem = DeviceReport | TelemetryReport | DevicePresenceReport;
type Rejection = { seq: number; code: string; message: string };
/** One twin or presence item of a frame, as a pure step on a status (re-applied on a write conflict). */
type StatusStep = (status: DeviceStatus, countRefusals: boolean) => DeviceStatus;

export interface DeviceReportsDeps {
  store: Store;
  cache: ObjectCache;
  telemetry: TelemetryStore;
  metrics: DeviceMetrics;
  log: Logger;
  convergence?: TwinConvergence;
  now?: () => number;
}

/** Status write errors a re-sent report would meet again: logged, and the items acknowledged. */
const NEVER_STORABLE = ['INVALID', 'BAD_REQUEST', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE'] as const;

/** Write attempts per device status: two agents of a unit may report the same device at once. */
const STATUS_WRITE_ATTEMPTS = 10;

/**
 * Stores the device items of one report frame. Node authorization: a node reports only about
 * devices whose home it may be. Twin and presence items are folded into one status write per
 * device per frame (a node may send thousands a second); telemetry rows go to the telemetry
 * store in one transaction per frame. The fold is re-applied to the freshly stored status when
 * another session wrote it meanwhile, and the merge (twin-merge.ts) commutes, so two home agents
 * reporting the same device at once lose nothing.
 */
export class DeviceReports {
  constructor(private readonly deps: DeviceReportsDeps) {}

  async handle(scope: DeviceHomeScope, items: readonly DeviceItem[]): Promise<{ rejected: Rejection[] }> {
    const { cache, metrics } = this.deps;
    const nowIso = new Date((this.deps.now ?? Date.now)()).toISOString();
    const rejected: Rejection[] = [];
    const steps = new Map<string, StatusStep[]>();
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
      const name = device.metadata.name;
      const list = steps.get(name) ?? [];
      steps.set(name, list);
      if (item.kind === 'device-presence') {
        const body = item.body;
        list.push((status) => mergePresence(status, body, scope.node));
        continue;
      }
      const body = item.body;
      list.push((status, count) => {
        const model = cache.get('DeviceModel', device.spec.model) as DeviceModel | undefined;
        const merged = mergeReport(status, body, { node: scope.node, model, now: nowIso });
        // A stale report is acknowledged (not refused): re-sending it would never make it fresh.
        if (count && merged.ignored) metrics.reportsRefused.inc({ reason: merged.ignored });
        if (count) for (const d of merged.dropped) metrics.reportsRefused.inc({ reason: d.reason });
        return merged.status;
      });
    }
    if (rows.length > 0) {
      const { stored, duplicates } = this.deps.telemetry.append(rows, (name) => retentionOf(cache.get('Device', name) as Device | undefined));
      metrics.telemetryStored.inc(stored);
      metrics.telemetryDuplicates.inc(duplicates);
    }
    for (const [name, list] of steps) {
      try {
        await this.writeStatus(name, list);
      } catch (err) {
        // Acknowledged only when re-sending could never store it; otherwise (storage failure,
        // conflicts past the attempts, store unavailable) no ack: the agent re-sends the report.
        if (!NEVER_STORABLE.some((code) => isOutpostError(err, code))) throw err;
        this.deps.log.warn({ device: name, err }, 'device status not written');
      }
    }
    // One line per frame, not per item: a misconfigured agent may send thousands.
    if (rejected.length > 0) this.deps.log.warn({ node: scope.node, refused: rejected.length, first: rejected[0] }, 'device report items refused');
    return { rejected };
  }

  /**
   * Folds the frame's steps into the stored status and writes it with the resourceVersion as
   * precondition; on a conflict (another session, or the model warning) folds again into the
   * fresh status. `message` stays what is stored (the model warning is the apply path's).
   */
  private async writeStatus(name: string, steps: StatusStep[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const fresh = (await this.deps.store.get('Device', name)) as Device | undefined;
      if (!fresh) return;
      const before = fresh.status ?? {};
      const status = steps.reduce((s, step) => step(s, attempt === 1), before);
      if (JSON.stringify(before) === JSON.stringify(status)) return;
      const { message: _ours, ...rest } = status;
      const message = before.message;
      try {
        await this.deps.store.updateStatus('Device', name, message === undefined ? rest : { ...rest, message }, { resourceVersion: fresh.metadata.resourceVersion ?? '' });
      } catch (err) {
        if (!isOutpostError(err, 'CONFLICT') || attempt >= STATUS_WRITE_ATTEMPTS) throw err;
        continue;
      }
      this.deps.metrics.statusWrites.inc();
      const generation = fresh.metadata.generation ?? 0;
      if (status.observedDesired !== undefined && status.observedDesired !== before.observedDesired) this.deps.convergence?.acknowledged(name, Math.min(status.observedDesired, generation));
      return;
    }
  }
}
