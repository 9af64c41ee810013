import type { Device } from '../../shared/api/device.js';
import { topics, type RejectReason } from '../../shared/devices/topics.js';
import type { Logger } from '../../shared/logger.js';
import type { PublishKind } from './access.js';
import type { DeviceDirectory } from './device-directory.js';
import type { DeviceMetrics } from './device-metrics.js';
import type { GroupCommit } from './group-commit.js';
import { parseReport, parseTelemetry, type ReportMessage } from './payloads.js';

/** Each value keeps the device version it came with: coalesced reports must not lend it a newer one (hub merge order). */
type Reported = Record<string, { value: string | number | boolean; timestamp: string; version?: number }>;
interface TwinState {
  reported: Reported;
  version?: number;
  observedDesired?: number;
}
export interface QueuedReport {
  device: string;
  reported: Reported;
  version?: number;
  observedDesired?: number;
}

/** How the agent publishes to devices (the embedded broker, or a client of an external one). */
export type PublishToDevices = (topic: string, payload: Buffer, retain: boolean) => void;

export interface DeviceMessagesDeps {
  directory: DeviceDirectory;
  commit: GroupCommit;
  metrics: DeviceMetrics;
  log: Logger;
  publish: PublishToDevices;
}

/**
 * What the agent does with device messages, whichever broker carries them: validates them against
 * the model, refuses bad ones on the device's errors topic, queues accepted ones in the outbox
 * (`done` runs after the commit), answers twin/get, and publishes desired twins retained.
 */
export class DeviceMessages {
  private readonly twins = new Map<string, TwinState>();
  /** device -> JSON of the desired twin last published retained. */
  private readonly publishedDesired = new Map<string, string>();

  constructor(private readonly deps: DeviceMessagesDeps) {}

  /** A message of `device` on one of its own topics. `done(err)` after it is durable (or refused). */
  handle(device: string, kind: PublishKind, topic: string, payload: Buffer, done: (err?: Error | null) => void): void {
    const { directory, metrics, commit } = this.deps;
    // Every `done` goes through the group commit, also for messages that write nothing: aedes
    // handles the packets of one socket read concurrently, and a PUBACK released at once would
    // overtake those of the accepted publishes read before it.
    const acknowledge = () => commit.after(() => done(null));
    // Presence is the connection's (embedded broker) or handled by the external broker's client.
    if (kind === 'presence') return acknowledge();
    const twin = directory.device(device);
    const model = twin && directory.modelOf(twin);
    if (!twin || !model) {
      this.refuse(device, topic, 'not-allowed', twin ? `model "${twin.spec.model}" is not known on this agent` : `device "${device}" is not bound to this agent`);
      return acknowledge();
    }
    const now = Date.now();
    if (kind === 'get') {
      metrics.messagesIn.inc({ type: 'get' });
      this.send(topics.getResponse(device), { desired: desiredOf(twin), reported: Object.fromEntries(Object.entries(this.twin(twin).reported).map(([k, v]) => [k, v.value])) }, 'get-response');
      return acknowledge();
    }
    if (kind === 'telemetry') {
      const msg = parseTelemetry(model, payload, now);
      if (!msg.ok) {
        this.refuse(device, topic, msg.reason, msg.error);
        return acknowledge();
      }
      metrics.messagesIn.inc({ type: 'telemetry' });
      return commit.add({ kind: 'telemetry', body: { device, timestamp: msg.value.timestamp, values: msg.value.values } }, (err) => done(err ?? null));
    }
    const msg = parseReport(model, payload, now);
    if (!msg.ok) {
      this.refuse(device, topic, msg.reason, msg.error);
      return acknowledge();
    }
    const state = this.twin(twin);
    // The hub's reportedVersion may be ahead of ours (a unit-bound device that reported through another agent).
    const known = Math.max(state.version ?? -1, twin.status?.reportedVersion ?? -1);
    if (msg.value.version !== undefined && msg.value.version < known) {
      this.refuse(device, topic, 'stale-version', `report version ${msg.value.version} is older than ${known}`);
      return acknowledge();
    }
    metrics.messagesIn.inc({ type: 'reported' });
    const reported = applyReport(state, msg.value);
    this.updateTwinPending();
    const version = msg.value.version;
    const observed = msg.value.observedDesired;
    commit.add(
      {
        kind: 'device-report',
        key: `device-report/${device}`,
        body: undefined,
        merge: (queued) => mergeReport(queued as QueuedReport | undefined, { device, reported, ...(version !== undefined ? { version } : {}), ...(observed !== undefined ? { observedDesired: observed } : {}) }),
      },
      (err) => done(err ?? null),
    );
  }

  /** Queues the device's online/offline state (coalesced per device); `done` after the commit. */
  presence(device: string, online: boolean, done: (err?: Error | null) => void = () => {}): void {
    this.deps.commit.add({ kind: 'device-presence', key: `device-presence/${device}`, body: { device, online, at: new Date().toISOString() } }, done);
  }

  /** Publishes, retained, every desired twin that changed since last time; clears those of devices gone. */
  publishDesired(): void {
    const seen = new Set<string>();
    for (const d of this.deps.directory.all()) {
      const name = d.metadata.name;
      seen.add(name);
      const json = JSON.stringify(desiredOf(d));
      if (this.publishedDesired.get(name) === json) continue;
      this.publishedDesired.set(name, json);
      this.deps.metrics.messagesOut.inc({ type: 'desired' });
      this.deps.publish(topics.desired(name), Buffer.from(json), true);
    }
    for (const name of [...this.publishedDesired.keys()]) {
      if (seen.has(name)) continue;
      this.publishedDesired.delete(name);
      this.twins.delete(name);
      this.deps.publish(topics.desired(name), Buffer.alloc(0), true); // clears the retained twin
    }
    this.updateTwinPending();
  }

  refuse(device: string, topic: string, reason: RejectReason, error: string): void {
    this.deps.metrics.rejected.inc({ reason });
    this.send(topics.errors(device), { topic, error, reason, at: new Date().toISOString() }, 'error');
  }

  /** The twin state the agent knows: the hub's status (from the cache) overlaid with newer local reports. */
  private twin(device: Device): TwinState {
    let state = this.twins.get(device.metadata.name);
    if (!state) {
      const s = device.status ?? {};
      state = { reported: { ...(s.reported ?? {}) }, ...(s.reportedVersion !== undefined ? { version: s.reportedVersion } : {}), ...(s.observedDesired !== undefined ? { observedDesired: s.observedDesired } : {}) };
      this.twins.set(device.metadata.name, state);
    }
    return state;
  }

  private updateTwinPending(): void {
    let pending = 0;
    for (const d of this.deps.directory.all()) if ((this.twin(d).observedDesired ?? -1) < (d.metadata.generation ?? 0)) pending++;
    this.deps.metrics.twinPending.set(pending);
  }

  private send(topic: string, body: unknown, type: string): void {
    this.deps.metrics.messagesOut.inc({ type });
    this.deps.publish(topic, Buffer.from(JSON.stringify(body)), false);
  }
}

function applyReport(state: TwinState, msg: ReportMessage): Reported {
  const reported: Reported = {};
  for (const [k, value] of Object.entries(msg.values)) reported[k] = { value, timestamp: msg.timestamp, ...(msg.version !== undefined ? { version: msg.version } : {}) };
  Object.assign(state.reported, reported);
  if (msg.version !== undefined) state.version = Math.max(state.version ?? 0, msg.version);
  if (msg.observedDesired !== undefined) state.observedDesired = msg.observedDesired;
  return reported;
}

function desiredOf(d: Device): { version: number; values: Record<string, string | number | boolean> } {
  return { version: d.metadata.generation ?? 0, values: d.spec.desired ?? {} };
}

/** Coalesces a report into the one queued for the device: per property the newer value wins. */
export function mergeReport(queued: QueuedReport | undefined, next: QueuedReport): QueuedReport {
  if (!queued) return next;
  const version = Math.max(queued.version ?? -1, next.version ?? -1);
  const observed = next.observedDesired ?? queued.observedDesired;
  return { device: next.device, reported: { ...queued.reported, ...next.reported }, ...(version >= 0 ? { version } : {}), ...(observed !== undefined ? { observedDesired: observed } : {}) };
}
