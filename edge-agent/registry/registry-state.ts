import type Database from 'better-sqlite3';
import type { Clock, Timer } from '../../shared/clock.js';
import { OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { monotonicClock } from './monotonic-clock.js';
import { OwnRecordStore } from './own-record-store.js';
import { MAX_INCARNATION } from '../../shared/registry/record-schema.js';
import {
  compareVersions, recordKey, supersedes,
  type Health, type InstanceView, type Nearness, type RecordVersion, type Registry, type RegistryRecord, type ServiceInstance,
} from './records.js';

export interface RegistryStateOptions {
  node: string;
  unit: string;
  /** How long a tombstone is kept, ms on this node's monotonic clock (never compared across nodes). Default 24 h. */
  tombstoneRetentionMs?: number;
}

export interface RegistryStateDeps {
  /** <data>/registry.db (WAL); holds own records and the incarnation. */
  db: Database.Database;
  /** Monotonic time for tombstone retention; defaults to performance.now(). */
  clock?: Clock;
  log?: Logger;
}

export type RegisterInput = Parameters<Registry['register']>[0];

const DAY_MS = 24 * 60 * 60 * 1000;
/** Change indexes reserved in registry.db at a time (one small write per this many changes). */
const INDEX_RESERVATION = 1_000_000;
const NEARNESS_RANK: Record<Nearness, number> = { node: 0, unit: 1, remote: 2 };
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const INSTANCE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function serviceOf(key: string): string {
  return key.slice(0, key.indexOf('/'));
}

function sameInstance(a: ServiceInstance, b: ServiceInstance): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A record received from elsewhere is only taken when it is internally consistent. */
function wellFormed(r: RegistryRecord): boolean {
  if (typeof r.key !== 'string' || typeof r.origin !== 'string' || !r.version) return false;
  if (!Number.isSafeInteger(r.version.incarnation) || !Number.isSafeInteger(r.version.counter)) return false;
  if (r.version.incarnation >= MAX_INCARNATION) return false;
  const slash = r.key.indexOf('/');
  if (slash <= 0 || !SERVICE_NAME.test(r.key.slice(0, slash)) || !INSTANCE_ID.test(r.key.slice(slash + 1))) return false;
  if (!r.instance) return true;
  return recordKey(r.instance.service, r.instance.id) === r.key && r.instance.node === r.origin;
}

/**
 * The registry as this node holds it: own records (persisted, versioned by this node) and replicated
 * ones (in memory), tombstones, the lookup index, and listeners. All methods are synchronous; a
 * listener sees a change only after it is committed to registry.db (own writes) or applied (merges).
 */
export class RegistryState implements Registry {
  readonly node: string;
  readonly unit: string;
  private currentIncarnation: number;
  private counter = 0;
  private changeIndex = 0;
  /** Indexes are reserved in registry.db up to here, so that a restarted agent starts above every index it gave out. */
  private indexReservedUpTo = 0;
  private readonly store: OwnRecordStore;
  private readonly clock: Clock;
  private readonly retentionMs: number;
  private readonly held = new Map<string, RegistryRecord>();
  private readonly byOrigin = new Map<string, Set<string>>();
  private readonly liveByService = new Map<string, Set<string>>();
  /** Index of the last change to each service (including removals), for blocking watches per service. */
  private readonly serviceIndexes = new Map<string, number>();
  private readonly tombstonedAt = new Map<string, number>();
  private readonly suspected = new Set<string>();
  private readonly listeners = new Set<(changed: readonly RegistryRecord[], index: number) => void>();
  private sweepTimer: Timer | undefined;
  /** Own writes collected by batch(): committed in one transaction, told to listeners as one change. */
  private pending: RegistryRecord[] | undefined;

  constructor(private readonly deps: RegistryStateDeps, options: RegistryStateOptions) {
    this.node = options.node;
    this.unit = options.unit;
    this.clock = deps.clock ?? monotonicClock;
    this.retentionMs = options.tombstoneRetentionMs ?? DAY_MS;
    this.store = new OwnRecordStore(deps.db);
    this.currentIncarnation = this.store.nextIncarnation();
    // A watcher's index must not go back across a restart (it would wait past changes it never saw).
    const reserved = this.store.reserveIndexes(INDEX_RESERVATION);
    this.changeIndex = reserved.from;
    this.indexReservedUpTo = reserved.upTo;
    // A restart re-announces every own live record under the new incarnation, so that a peer holding
    // any older copy (even one from a previous incarnation with a higher counter) takes it.
    const loaded = this.store.load(this.node);
    const reannounced = loaded.map((r) => (r.instance ? { ...r, version: this.nextVersion() } : r));
    this.store.save(reannounced.filter((r) => r.instance));
    for (const r of reannounced) this.put(r);
    if (reannounced.some((r) => r.instance)) this.changeIndex++;
  }

  get incarnation(): number {
    return this.currentIncarnation;
  }

  index(): number {
    return this.changeIndex;
  }

  /** The index of the last change to `service` (0 when it never changed here). */
  serviceIndex(service: string): number {
    return this.serviceIndexes.get(service) ?? 0;
  }

  /** Starts the periodic removal of tombstones past their retention. */
  start(): void {
    const every = Math.max(1_000, Math.min(60_000, Math.floor(this.retentionMs / 4)));
    const tick = () => {
      // A throw in a timer would end the agent: a sweep that cannot write registry.db is retried next time.
      try {
        this.sweep();
      } catch (err) {
        this.deps.log?.error({ err }, 'dropping expired registry tombstones failed; will retry');
      }
      this.sweepTimer = this.clock.setTimeout(tick, every);
      this.sweepTimer.unref?.();
    };
    this.sweepTimer = this.clock.setTimeout(tick, every);
    this.sweepTimer.unref?.();
  }

  stop(): void {
    if (this.sweepTimer) this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Drops tombstones older than the retention; returns how many. Not a visible change. */
  sweep(): number {
    const now = this.clock.now();
    const expired: string[] = [];
    for (const [key, at] of this.tombstonedAt) if (now - at >= this.retentionMs) expired.push(key);
    const own = expired.filter((key) => this.held.get(key)?.origin === this.node);
    // Forgotten on disk first: if that fails, memory still matches registry.db and the next sweep retries.
    if (own.length > 0) this.store.forget(own);
    for (const key of expired) {
      const r = this.held.get(key);
      if (r) this.drop(r);
    }
    return expired.length;
  }

  /**
   * Runs `fn` with own writes batched: one transaction (one fsync) and one change for all of them,
   * e.g. many TTL leases expiring in the same tick. As for single writes, nothing is visible before
   * the commit: inside `fn`, reads still see the state from before the batch.
   */
  batch(fn: () => void): void {
    if (this.pending) return fn();
    this.pending = [];
    try {
      fn();
    } finally {
      const writes = this.pending;
      this.pending = undefined;
      if (writes.length > 0) {
        this.store.save(writes);
        for (const r of writes) this.put(r);
        this.changed(writes);
      }
    }
  }

  register(input: RegisterInput): RegistryRecord {
    if (!SERVICE_NAME.test(input.service)) throw new OutpostError('INVALID', `service name ${JSON.stringify(input.service)} is not a DNS label`, { fields: [{ path: '/service', message: 'expected a DNS label: [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?' }] });
    if (!INSTANCE_ID.test(input.id)) throw new OutpostError('INVALID', `instance id ${JSON.stringify(input.id)} is invalid`, { fields: [{ path: '/id', message: 'expected 1-128 characters of [A-Za-z0-9._:-]' }] });
    const key = recordKey(input.service, input.id);
    const held = this.held.get(key);
    if (held?.instance && held.origin !== this.node && held.origin < this.node) {
      throw new OutpostError('CONFLICT', `instance ${key} is registered by node ${held.origin}; choose another instance id`);
    }
    const instance: ServiceInstance = {
      service: input.service, id: input.id, node: this.node, unit: this.unit,
      address: input.address, port: input.port, protocol: input.protocol, metadata: { ...input.metadata }, weight: input.weight,
      health: input.health ?? (held?.origin === this.node && held.instance ? held.instance.health : 'passing'),
      lease: input.lease,
    };
    if (held?.origin === this.node && held.instance && sameInstance(held.instance, instance)) return held;
    return this.writeOwn(key, instance);
  }

  deregister(service: string, id: string): RegistryRecord | undefined {
    const key = recordKey(service, id);
    const held = this.held.get(key);
    if (!held?.instance) return undefined;
    if (held.origin !== this.node) throw new OutpostError('FORBIDDEN', `instance ${key} belongs to node ${held.origin}; only that node can deregister it`);
    return this.writeOwn(key, undefined);
  }

  setHealth(service: string, id: string, health: Health): RegistryRecord | undefined {
    const held = this.held.get(recordKey(service, id));
    if (!held?.instance || held.origin !== this.node) return undefined;
    if (held.instance.health === health) return held;
    return this.writeOwn(held.key, { ...held.instance, health });
  }

  mergeRemote(records: readonly RegistryRecord[]): RegistryRecord[] {
    const changed: RegistryRecord[] = [];
    const ownWrites: RegistryRecord[] = [];
    for (const r of records) {
      if (!wellFormed(r)) {
        this.deps.log?.warn({ key: r?.key, origin: r?.origin }, 'ignoring a malformed registry record');
        continue;
      }
      const held = this.held.get(r.key);
      if (r.origin === this.node) {
        const answer = this.reassertOwn(r, held);
        if (answer) { changed.push(answer); ownWrites.push(answer); }
        continue;
      }
      if (!supersedes(r, held)) continue;
      const copy: RegistryRecord = { key: r.key, origin: r.origin, version: { ...r.version }, ...(r.instance ? { instance: { ...r.instance, metadata: { ...r.instance.metadata } } } : {}) };
      this.put(copy);
      changed.push(copy);
    }
    if (ownWrites.length > 0) this.store.save(ownWrites);
    if (changed.length > 0) this.changed(changed);
    return changed;
  }

  setOriginSuspected(origin: string, suspected: boolean): void {
    if (origin === this.node || this.suspected.has(origin) === suspected) return;
    if (suspected) this.suspected.add(origin);
    else this.suspected.delete(origin);
    const live = this.recordsOf(origin).filter((r) => r.instance);
    this.changed(live);
  }

  isSuspected(origin: string): boolean {
    return this.suspected.has(origin);
  }

  records(): Iterable<RegistryRecord> {
    return this.held.values();
  }

  recordsOf(origin: string): RegistryRecord[] {
    const keys = this.byOrigin.get(origin);
    if (!keys) return [];
    const out: RegistryRecord[] = [];
    for (const k of keys) {
      const r = this.held.get(k);
      if (r) out.push(r);
    }
    return out;
  }

  get(key: string): RegistryRecord | undefined {
    return this.held.get(key);
  }

  lookup(service: string, options: { unit?: string; all?: boolean } = {}): InstanceView[] {
    const keys = this.liveByService.get(service);
    if (!keys) return [];
    const out: InstanceView[] = [];
    for (const k of keys) {
      const r = this.held.get(k);
      if (!r?.instance) continue;
      if (options.unit !== undefined && r.instance.unit !== options.unit) continue;
      const view = this.view(r.instance, r.version);
      if (!options.all && view.health !== 'passing') continue;
      out.push(view);
    }
    return out.sort(byNearness);
  }

  services(): string[] {
    return [...this.liveByService.keys()].sort();
  }

  onChange(listener: (changed: readonly RegistryRecord[], index: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Counts for metrics and status. */
  counts(): { instances: number; services: number; tombstones: number; own: number } {
    let instances = 0;
    for (const keys of this.liveByService.values()) instances += keys.size;
    return { instances, services: this.liveByService.size, tombstones: this.tombstonedAt.size, own: this.byOrigin.get(this.node)?.size ?? 0 };
  }

  private view(instance: ServiceInstance, version: RecordVersion): InstanceView {
    const nearness: Nearness = instance.node === this.node ? 'node' : instance.unit === this.unit ? 'unit' : 'remote';
    const suspected = this.suspected.has(instance.node);
    return { ...instance, metadata: { ...instance.metadata }, lease: { ...instance.lease }, nearness, version: { ...version }, ...(suspected ? { health: 'critical' as const, originSuspected: true } : {}) };
  }

  private nextVersion(): { incarnation: number; counter: number } {
    return { incarnation: this.currentIncarnation, counter: ++this.counter };
  }

  /** Persists a new version of an own record, then applies it and tells listeners. */
  private writeOwn(key: string, instance: ServiceInstance | undefined): RegistryRecord {
    const record: RegistryRecord = { key, origin: this.node, version: this.nextVersion(), ...(instance ? { instance } : {}) };
    if (this.pending) {
      this.pending.push(record);
      return record;
    }
    this.store.save([record]);
    this.put(record);
    this.changed([record]);
    return record;
  }

  /**
   * A peer sent a record in this node's name. This node is its only writer, so any copy it does not
   * hold (left over from before a restart or a wiped data dir) is answered with this node's truth
   * under a newer version: the held record re-issued, or a tombstone.
   */
  private reassertOwn(incoming: RegistryRecord, held: RegistryRecord | undefined): RegistryRecord | undefined {
    const ownHeld = held?.origin === this.node ? held : undefined;
    if (ownHeld && compareVersions(incoming.version, ownHeld.version) <= 0) return undefined;
    if (!ownHeld && !incoming.instance) return undefined;
    if (incoming.version.incarnation >= this.currentIncarnation) {
      this.currentIncarnation = this.store.nextIncarnation(incoming.version.incarnation + 1);
      this.counter = 0;
    }
    const record: RegistryRecord = { key: incoming.key, origin: this.node, version: this.nextVersion(), ...(ownHeld?.instance ? { instance: ownHeld.instance } : {}) };
    if (held && held.origin !== this.node && !supersedes(record, held)) return undefined;
    this.put(record);
    return record;
  }

  /** Replaces whatever is held under the record's key, keeping the indexes in step. */
  private put(record: RegistryRecord): void {
    const previous = this.held.get(record.key);
    if (previous) this.drop(previous);
    this.held.set(record.key, record);
    let keys = this.byOrigin.get(record.origin);
    if (!keys) this.byOrigin.set(record.origin, (keys = new Set()));
    keys.add(record.key);
    if (record.instance) {
      let live = this.liveByService.get(record.instance.service);
      if (!live) this.liveByService.set(record.instance.service, (live = new Set()));
      live.add(record.key);
    } else {
      this.tombstonedAt.set(record.key, this.clock.now());
    }
  }

  private drop(record: RegistryRecord): void {
    this.held.delete(record.key);
    this.tombstonedAt.delete(record.key);
    const keys = this.byOrigin.get(record.origin);
    keys?.delete(record.key);
    if (keys?.size === 0) this.byOrigin.delete(record.origin);
    const service = serviceOf(record.key);
    const live = this.liveByService.get(service);
    live?.delete(record.key);
    if (live?.size === 0) this.liveByService.delete(service);
  }

  private reserveMoreIndexes(): void {
    try {
      this.indexReservedUpTo = this.store.reserveIndexes(INDEX_RESERVATION).upTo;
    } catch (err) {
      // Lookups go on; only an index after a restart might repeat one from before. Retried at the next change.
      this.deps.log?.error({ err }, 'could not reserve registry change indexes in registry.db');
    }
  }

  private changed(records: readonly RegistryRecord[]): void {
    const index = ++this.changeIndex;
    if (index >= this.indexReservedUpTo) this.reserveMoreIndexes();
    for (const r of records) this.serviceIndexes.set(serviceOf(r.key), index);
    for (const listener of [...this.listeners]) {
      try {
        listener(records, index);
      } catch (err) {
        this.deps.log?.error({ err }, 'registry change listener failed');
      }
    }
  }
}

function byNearness(a: InstanceView, b: InstanceView): number {
  return NEARNESS_RANK[a.nearness] - NEARNESS_RANK[b.nearness] || b.weight - a.weight || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
