import type { Instance } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ReportItem } from '../../shared/protocol/frames.js';
import type { ObjectCache } from '../cache/object-cache.js';
import type { EventLog, HubEvent } from '../events/event-log.js';
import type { NodeHealth } from '../health/node-health.js';
import type { HubMetrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { NodeScope } from './scope.js';
import type { DeviceItem, DeviceReports } from '../devices/device-reports.js';
import type { PeerVotes } from '../peers/peer-votes.js';
import type { RegistryReports } from '../registry/registry-reports.js';
import type { RegistryRecordReport } from '../../shared/protocol/frames.js';

type Rejection = { seq: number; code: string; message: string };

const MAX_REMEMBERED_DELETIONS = 50_000;

/**
 * Stores one outbox batch from an agent. Node authorization for writes: a node may write the
 * status of instances placed on it, its own node status and events about its own objects;
 * anything else is refused (and acknowledged as refused, so the agent's outbox drains).
 * Statuses are idempotent (latest wins) and events are unique per (node, seq), so a batch
 * re-sent after a lost acknowledgement is stored once.
 */
export class ReportHandler {
  /** Units of recently deleted instances: their last events may still be on their way. */
  private readonly deletedUnits = new Map<string, string>();

  constructor(private readonly deps: { store: Store; cache: ObjectCache; events: EventLog; health: NodeHealth; log: Logger; metrics: HubMetrics; devices?: DeviceReports; registry?: RegistryReports; peerVotes?: PeerVotes }) {
    deps.cache.onChange((e) => {
      if (e.type !== 'DELETED' || e.object.kind !== 'Instance') return;
      this.deletedUnits.delete(e.object.metadata.name);
      this.deletedUnits.set(e.object.metadata.name, (e.object as Instance).spec.unit);
      if (this.deletedUnits.size > MAX_REMEMBERED_DELETIONS) this.deletedUnits.delete(this.deletedUnits.keys().next().value ?? '');
    });
  }

  /** The unit an instance belongs to, from the cache or the memory of deletions; else a guess. */
  private instanceOfUnit(name: string, unit: string, session?: { heldInstance(name: string): boolean }): boolean {
    const known = (this.deps.cache.get('Instance', name) as Instance | undefined)?.spec.unit ?? this.deletedUnits.get(name);
    if (known !== undefined) return known === unit;
    // Deleted before this hub process started: held in this session, or named <app>-<unit>-<index>.
    return session?.heldInstance(name) === true || new RegExp(`-${unit.replace(/\./g, '\\.')}-\\d+$`).test(name);
  }

  async handle(scope: NodeScope, items: ReportItem[], session?: { heldInstance(name: string): boolean }): Promise<{ rejected: Rejection[] }> {
    const rejected: Rejection[] = [];
    const events: HubEvent[] = [];
    const deviceItems: DeviceItem[] = [];
    const registryItems: RegistryRecordReport[] = [];
    const reject = (item: ReportItem, code: string, message: string) => {
      rejected.push({ seq: item.seq, code, message });
      this.deps.metrics.reportsRejected.inc({ kind: item.kind, code });
      this.deps.log.warn({ node: scope.node, seq: item.seq, kind: item.kind, code, reason: message }, 'report item refused');
    };
    for (const item of items) {
      switch (item.kind) {
        case 'instance-status': {
          const inst = this.deps.cache.get('Instance', item.body.name) as Instance | undefined;
          if (!inst) { reject(item, 'OUTPOST_NOT_FOUND', `instance ${item.body.name} does not exist`); break; }
          if (inst.spec.node !== scope.node) { reject(item, 'OUTPOST_FORBIDDEN', `instance ${item.body.name} is not placed on node ${scope.node}`); break; }
          try {
            await this.deps.store.updateStatus('Instance', inst.metadata.name, { ...item.body.status, node: scope.node });
            this.deps.metrics.reportsStored.inc({ kind: item.kind });
          } catch (err) {
            if (!isOutpostError(err)) throw err; // storage failure: no ack, the agent retries
            reject(item, err.code, err.message);
          }
          break;
        }
        case 'node-status':
          if (item.body.node !== undefined && item.body.node !== scope.node) { reject(item, 'OUTPOST_FORBIDDEN', `node ${scope.node} may not write the status of node ${item.body.node}`); break; }
          this.deps.health.reported(scope.node, item.body);
          this.deps.metrics.reportsStored.inc({ kind: item.kind });
          break;
        case 'event': {
          const { object } = item.body;
          // Its own node, or an instance of its own unit. Not only the instances placed on it now:
          // an instance it ran may have been deleted or re-created on another node of the unit
          // before its last events (Stopped, Exited) got through, and those must not be lost.
          // A node never writes events about another unit's instances.
          const own = (object.kind === 'EdgeNode' && object.name === scope.node) || (object.kind === 'Instance' && this.instanceOfUnit(object.name, scope.unit, session));
          if (!own) { reject(item, 'OUTPOST_FORBIDDEN', `node ${scope.node} may not report events about ${object.kind} ${object.name}`); break; }
          events.push({ node: scope.node, seq: item.seq, ...item.body });
          break;
        }
        case 'device-report':
        case 'device-presence':
        case 'telemetry':
          // Devices: authorized (the node may be the device's home) and stored per frame.
          if (this.deps.devices) deviceItems.push(item);
          else reject(item, 'OUTPOST_BAD_REQUEST', 'this hub does not store device reports');
          break;
        case 'peer-health':
          // Kept in memory (fresh votes only count); a vote names peers, never writes them.
          this.deps.peerVotes?.record(scope.node, item.body);
          this.deps.metrics.reportsStored.inc({ kind: item.kind });
          break;
        case 'registry-record':
          // Authorized per record (origin in the node's unit) and merged per frame.
          if (this.deps.registry) registryItems.push(item);
          else reject(item, 'OUTPOST_BAD_REQUEST', 'this hub does not keep a registry view');
          break;
      }
    }
    if (deviceItems.length > 0 && this.deps.devices) {
      const result = await this.deps.devices.handle(scope, deviceItems);
      const kinds = new Map(deviceItems.map((i) => [i.seq, i.kind]));
      for (const r of result.rejected) {
        rejected.push(r);
        this.deps.metrics.reportsRejected.inc({ kind: kinds.get(r.seq) ?? 'device', code: r.code });
      }
      this.deps.metrics.reportsStored.inc({ kind: 'device' }, deviceItems.length - result.rejected.length);
    }
    if (registryItems.length > 0 && this.deps.registry) {
      const result = this.deps.registry.handle(scope, registryItems);
      for (const r of result.rejected) {
        rejected.push(r);
        this.deps.metrics.reportsRejected.inc({ kind: 'registry-record', code: r.code });
      }
      this.deps.metrics.reportsStored.inc({ kind: 'registry-record' }, registryItems.length - result.rejected.length);
    }
    if (events.length > 0) {
      this.deps.events.append(events);
      this.deps.metrics.reportsStored.inc({ kind: 'event' }, events.length);
    }
    // Acknowledge only what is stored: node status is coalesced in memory, so write it now.
    if (items.some((i) => i.kind === 'node-status')) await this.deps.health.flush();
    return { rejected };
  }
}
