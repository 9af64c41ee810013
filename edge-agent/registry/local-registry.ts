import { join } from 'node:path';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { InstanceStatus } from '../../shared/api/instance.js';
import type { Logger } from '../../shared/logger.js';
import { openAgentDatabase } from '../cache/database.js';
import type { LocalRoute } from '../local-api/http-util.js';
import { DnsServer } from './dns-server.js';
import { monotonicClock } from './monotonic-clock.js';
import { ProcessLeases, type DesiredServiceInstance } from './process-leases.js';
import { registryRoutes } from './registry-http.js';
import { createRegistryMetrics, type RegistryMetrics } from './registry-metrics.js';
import { RegistryState } from './registry-state.js';
import { RegistryWatches } from './registry-watches.js';
import { localLookup, type ServiceLookup } from './service-lookup.js';
import { TtlLeases } from './ttl-leases.js';

export interface LocalRegistryOptions {
  node: string;
  unit: string;
  dataDir: string;
  /** Address registered for the node's EdgeApp instances (--advertise-address). Default 127.0.0.1. */
  advertiseAddress?: string;
  /** DNS listener (--dns-listen host:port); undefined = no DNS server (`none`). */
  dns?: { host: string; port: number; ttlSeconds?: number };
  /** Tombstone retention, ms (monotonic). Default 24 h. */
  tombstoneRetentionMs?: number;
  /** A silent TTL instance is removed this many ttls after turning critical. Default 3. */
  ttlGraceTtls?: number;
  /** Open watches at most. Default 1 024. */
  maxWatchers?: number;
}

export interface LocalRegistryDeps {
  log: Logger;
  metrics: MetricsRegistry;
  /** The instances the node should run (undefined while not known yet). */
  desired(): DesiredServiceInstance[] | undefined;
  statuses(): Map<string, InstanceStatus>;
}

/**
 * The agent's local service registry (README "Local service registry"): the state in
 * <data>/registry.db, TTL and process-bound leases, the HTTP routes for the local API, watches,
 * and the DNS server. Peer replication and the hub view plug in around `state`.
 */
export class LocalRegistry {
  readonly state: RegistryState;
  readonly metrics: RegistryMetrics;
  readonly routes: LocalRoute;
  private readonly db;
  private readonly leases: TtlLeases;
  private readonly processLeases: ProcessLeases;
  private readonly watches: RegistryWatches;
  private readonly dns: DnsServer | undefined;
  private lookupImpl: ServiceLookup;
  private dnsError: string | undefined;
  private lookupGate: Promise<void> = Promise.resolve();

  constructor(private readonly deps: LocalRegistryDeps, private readonly options: LocalRegistryOptions) {
    const log = deps.log.child({ component: 'registry' });
    this.db = openAgentDatabase(join(options.dataDir, 'registry.db'), log).db;
    this.state = new RegistryState({ db: this.db, clock: monotonicClock, log }, { node: options.node, unit: options.unit, ...(options.tombstoneRetentionMs !== undefined ? { tombstoneRetentionMs: options.tombstoneRetentionMs } : {}) });
    this.lookupImpl = localLookup(this.state);
    const lookup: ServiceLookup = (service, opts) => this.lookupImpl(service, opts);
    this.metrics = createRegistryMetrics(deps.metrics, () => this.state.counts());
    this.leases = new TtlLeases(
      {
        registry: this.state, clock: monotonicClock,
        onExpiry: (kind, key) => { this.metrics.ttlExpiries.inc({ outcome: kind }); log.info({ instance: key, outcome: kind }, 'TTL lease missed its heartbeat'); },
        onError: (err) => log.error({ err }, 'TTL leases could not be checked; retrying'),
      },
      options.ttlGraceTtls !== undefined ? { graceTtls: options.ttlGraceTtls } : {},
    );
    this.processLeases = new ProcessLeases({ registry: this.state, desired: deps.desired, statuses: deps.statuses, clock: monotonicClock, log }, { address: options.advertiseAddress ?? '127.0.0.1' });
    this.watches = new RegistryWatches(this.state, options.maxWatchers !== undefined ? { maxWatchers: options.maxWatchers } : {}, (kind, open) => this.metrics.subscribers.set({ kind }, open));
    this.routes = registryRoutes({ registry: this.state, leases: this.leases, watches: this.watches, lookup, metrics: this.metrics, log, ready: () => this.lookupGate });
    this.dns = options.dns
      ? new DnsServer({ lookup, log, onQuery: (transport, rcode) => this.metrics.dnsQueries.inc({ transport, rcode: String(rcode) }) }, { host: options.dns.host, port: options.dns.port, ...(options.dns.ttlSeconds !== undefined ? { ttlSeconds: options.dns.ttlSeconds } : {}) })
      : undefined;
  }

  /** Replaces how lookups are answered (the hub view adds other units' instances after local ones). */
  setLookup(lookup: ServiceLookup): void {
    this.lookupImpl = lookup;
  }

  /**
   * HTTP lookups and watches wait (at most maxMs) until `ready` settles. For peer replication: a
   * restarted agent holds only its own records until its peers have sent theirs, and a watcher
   * must not be given that partial list. DNS is not held (an answer now beats a complete one later).
   */
  holdLookupsUntil(ready: Promise<unknown>, maxMs = 5_000): void {
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((resolve) => { timer = setTimeout(resolve, maxMs); timer.unref(); });
    this.lookupGate = Promise.race([ready.then(() => undefined, () => undefined), cap]).finally(() => clearTimeout(timer));
  }

  /** Where DNS answers (host:port), or undefined when DNS is off. */
  get dnsAddress(): string | undefined {
    return this.dnsError ? undefined : this.dns?.address;
  }

  async start(): Promise<void> {
    this.state.start();
    this.watches.start();
    this.leases.start();
    this.processLeases.start();
    // A DNS port that cannot be bound (taken) is reported, not fatal: the HTTP API still serves.
    try {
      await this.dns?.start();
    } catch (err) {
      this.dnsError = `DNS not started on ${this.options.dns?.host ?? ''}:${this.options.dns?.port ?? ''}: ${(err as Error).message}`;
      this.deps.log.error({ err }, this.dnsError);
    }
  }

  async stop(): Promise<void> {
    if (!this.dnsError) await this.dns?.stop();
    this.processLeases.stop();
    this.leases.stop();
    this.watches.stop();
    this.state.stop();
  }

  /** Closes registry.db; after stop(). */
  close(): void {
    this.db.close();
  }

  /** An instance's runtime status changed: its process-bound registration follows readiness. */
  statusChanged(name: string, status: InstanceStatus): void {
    this.processLeases.statusChanged(name, status);
  }

  /** The desired instances changed: registrations of instances no longer wanted go at once. */
  desiredChanged(): void {
    this.processLeases.refresh();
  }

  /** For /v1/status. */
  status(): Record<string, unknown> {
    return { incarnation: this.state.incarnation, index: this.state.index(), ...this.state.counts(), watches: this.watches.counts(), ...(this.dns ? { dns: this.dnsError ? { error: this.dnsError } : this.dns.address } : {}) };
  }
}
