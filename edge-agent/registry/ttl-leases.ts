import type { Clock, Timer } from '../../shared/clock.js';
import { OutpostError } from '../../shared/errors.js';
import { recordKey, type Registry, type RegistryRecord } from './records.js';

export interface TtlLeasesOptions {
  /** After a missed heartbeat (ttl), how many more ttls before the instance is deregistered. Default 3. */
  graceTtls?: number;
  /** How often leases are checked, ms. Default 250. */
  tickMs?: number;
}

export interface TtlLeasesDeps {
  /** With batch(), the expiries of one check are one transaction. */
  registry: Registry & { batch?(fn: () => void): void };
  /** Monotonic time: a wall-clock jump must not expire or revive leases. */
  clock: Clock;
  /** Told when a lease turns critical or is removed (metrics, logs). */
  onExpiry?(kind: 'critical' | 'removed', key: string): void;
  /** A check that failed (registry.db not writable): the next tick tries again. */
  onError?(err: unknown): void;
}

interface Lease {
  service: string;
  id: string;
  ttlMs: number;
  lastBeat: number;
}

/**
 * TTL leases of this node's own instances: a registrant that misses its heartbeat (ttl) turns its
 * instance critical; after a further grace of graceTtls x ttl the instance is deregistered (a
 * tombstone). Own records are learned from the registry's change feed, so registrations made before
 * a restart get a fresh ttl from the moment the agent is back.
 */
export class TtlLeases {
  private readonly leases = new Map<string, Lease>();
  private readonly graceTtls: number;
  private readonly tickMs: number;
  private timer: Timer | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: TtlLeasesDeps, options: TtlLeasesOptions = {}) {
    this.graceTtls = options.graceTtls ?? 3;
    this.tickMs = options.tickMs ?? 250;
  }

  start(): void {
    this.unsubscribe = this.deps.registry.onChange((changed) => this.learn(changed));
    this.learn(this.deps.registry.recordsOf(this.deps.registry.node));
    this.schedule();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Renews the lease of an own TTL instance; a critical one turns passing again. */
  heartbeat(service: string, id: string): RegistryRecord {
    const key = recordKey(service, id);
    const held = this.deps.registry.get(key);
    if (!held?.instance || held.origin !== this.deps.registry.node) throw new OutpostError('NOT_FOUND', `no instance ${id} of service ${service} is registered on this node`);
    const lease = this.leases.get(key);
    if (!lease) throw new OutpostError('CONFLICT', `instance ${key} has a ${held.instance.lease.kind} lease, not a ttl lease: it needs no heartbeat`);
    lease.lastBeat = this.deps.clock.now();
    if (held.instance.health === 'passing') return held;
    return this.deps.registry.setHealth(service, id, 'passing') ?? held;
  }

  /** Checks every lease now (the timer does this every tickMs). */
  check(): void {
    const run = (fn: () => void) => (this.deps.registry.batch ? this.deps.registry.batch(fn) : fn());
    run(() => this.expire());
  }

  private expire(): void {
    const now = this.deps.clock.now();
    for (const [key, lease] of [...this.leases]) {
      const silent = now - lease.lastBeat;
      if (silent > lease.ttlMs * (1 + this.graceTtls)) {
        this.leases.delete(key);
        this.deps.registry.deregister(lease.service, lease.id);
        this.deps.onExpiry?.('removed', key);
      } else if (silent > lease.ttlMs && this.deps.registry.get(key)?.instance?.health === 'passing') {
        this.deps.registry.setHealth(lease.service, lease.id, 'critical');
        this.deps.onExpiry?.('critical', key);
      }
    }
  }

  tracked(): number {
    return this.leases.size;
  }

  private schedule(): void {
    this.timer = this.deps.clock.setTimeout(() => {
      try {
        this.check();
      } catch (err) {
        this.deps.onError?.(err);
      }
      this.schedule();
    }, this.tickMs);
    this.timer.unref?.();
  }

  /** Keeps the lease table in step with own records: new TTL instances start a lease (a registration is a heartbeat). */
  private learn(records: readonly RegistryRecord[]): void {
    for (const r of records) {
      if (r.origin !== this.deps.registry.node) continue;
      const instance = r.instance;
      if (!instance || instance.lease.kind !== 'ttl') {
        this.leases.delete(r.key);
        continue;
      }
      const lease = this.leases.get(r.key);
      if (lease) lease.ttlMs = instance.lease.ttlMs;
      else this.leases.set(r.key, { service: instance.service, id: instance.id, ttlMs: instance.lease.ttlMs, lastBeat: this.deps.clock.now() });
    }
  }
}
