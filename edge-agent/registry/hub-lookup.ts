import type Database from 'better-sqlite3';
import type { Logger } from '../../shared/logger.js';
import type { HubRegistryApi } from './hub-registry-api.js';
import type { HubViewMetrics } from './hub-view-metrics.js';
import type { InstanceView, Registry, ServiceInstance } from './records.js';
import type { ServiceLookup } from './service-lookup.js';

export interface HubLookupOptions {
  /** A cached answer younger than this is used without asking the hub, ms. Default 5 000. */
  freshMs?: number;
  /** Services whose last answer is kept in the cache file (least recently fetched dropped first). Default 1 000. */
  maxServices?: number;
  /** Hub requests in flight at most; beyond, a lookup of an unknown service answers without other units. Default 16. */
  maxInflight?: number;
  now?: () => number;
}

export interface HubLookupDeps {
  registry: Registry;
  hub: HubRegistryApi;
  /** The agent's cache database: the last answer per service survives restarts. */
  db: Database.Database;
  /** True while the hub link is up: only then is the hub asked. */
  linkUp(): boolean;
  log: Logger;
  metrics?: HubViewMetrics;
}

/**
 * Lookups across units (README "Other units"): the local registry answers for this node and unit;
 * other units' instances come from the hub's global view, appended after them as nearness
 * `remote`. The last answer per service is kept in SQLite, so with the hub unreachable lookups
 * still return it; while the link is up an answer older than `freshMs` is refreshed (concurrent
 * lookups of one service share one request, each bounded by the hub client's timeout).
 */
export class HubLookup {
  private readonly stmts;
  private readonly inflight = new Map<string, Promise<ServiceInstance[] | undefined>>();
  private readonly memory = new Map<string, { instances: ServiceInstance[]; fetchedAt: number }>();
  /** Last failed hub request per service: not retried within freshMs, so a slow hub does not slow every lookup. */
  private readonly failedAt = new Map<string, number>();
  private readonly freshMs: number;
  private readonly maxServices: number;
  private readonly maxInflight: number;
  private readonly now: () => number;

  constructor(private readonly deps: HubLookupDeps, options: HubLookupOptions = {}) {
    this.freshMs = options.freshMs ?? 5_000;
    this.maxServices = options.maxServices ?? 1_000;
    this.maxInflight = options.maxInflight ?? 16;
    this.now = options.now ?? Date.now;
    deps.db.exec('CREATE TABLE IF NOT EXISTS registry_remote (service TEXT PRIMARY KEY, instances TEXT NOT NULL, fetched_at INTEGER NOT NULL)');
    this.stmts = {
      get: deps.db.prepare<[string], { instances: string; fetched_at: number }>('SELECT instances, fetched_at FROM registry_remote WHERE service = ?'),
      put: deps.db.prepare('INSERT INTO registry_remote (service, instances, fetched_at) VALUES (?, ?, ?) ON CONFLICT (service) DO UPDATE SET instances = excluded.instances, fetched_at = excluded.fetched_at'),
      trim: deps.db.prepare('DELETE FROM registry_remote WHERE service IN (SELECT service FROM registry_remote ORDER BY fetched_at DESC LIMIT -1 OFFSET ?)'),
    };
  }

  /** The ServiceLookup the HTTP API and DNS use. */
  readonly lookup: ServiceLookup = async (service, options) => {
    const { registry } = this.deps;
    const local = registry.lookup(service, options);
    if (options.unit === registry.unit) return local;
    const remote = (await this.remote(service)).filter((i) => i.unit !== registry.unit && (options.unit === undefined || i.unit === options.unit) && (options.all || i.health === 'passing'));
    const views: InstanceView[] = remote.map((i) => ({ ...i, nearness: 'remote' }));
    return [...local, ...views];
  };

  /**
   * Other units' instances of a service. A cached answer is returned at once, also when old (a
   * refresh is then started in the background while the link is up), so a lookup never waits for
   * the hub when anything is known: local answers and watches keep their speed. Only a service
   * never answered before waits for the hub (bounded by the hub client's timeout).
   */
  async remote(service: string): Promise<ServiceInstance[]> {
    const cached = this.cached(service);
    const now = this.now();
    const recentFailure = now - (this.failedAt.get(service) ?? -Infinity) < this.freshMs;
    const source = (s: string) => this.deps.metrics?.remoteLookups.inc({ source: s });
    const canAsk = this.deps.linkUp() && !recentFailure;
    if (cached) {
      const stale = now - cached.fetchedAt >= this.freshMs;
      if (stale && canAsk) void this.refresh(service);
      source(stale ? 'stale' : 'cache');
      return cached.instances;
    }
    const fresh = canAsk ? await this.refresh(service) : undefined;
    source(fresh ? 'hub' : 'none');
    return fresh ?? [];
  }

  private cached(service: string): { instances: ServiceInstance[]; fetchedAt: number } | undefined {
    const hit = this.memory.get(service);
    if (hit) return hit;
    const row = this.stmts.get.get(service);
    if (!row) return undefined;
    const entry = { instances: JSON.parse(row.instances) as ServiceInstance[], fetchedAt: row.fetched_at };
    this.remember(service, entry);
    return entry;
  }

  private refresh(service: string): Promise<ServiceInstance[] | undefined> {
    let p = this.inflight.get(service);
    if (p) return p;
    // A burst of lookups of many unknown names (a DNS scan, a typo loop) never becomes a burst at the hub.
    if (this.inflight.size >= this.maxInflight) return Promise.resolve(undefined);
    p = this.deps.hub.service(service).then(
      (instances) => {
        const entry = { instances, fetchedAt: this.now() };
        try {
          this.stmts.put.run(service, JSON.stringify(instances), entry.fetchedAt);
          this.stmts.trim.run(this.maxServices);
        } catch (err) {
          this.deps.log.warn({ err, service }, 'could not cache the hub answer for a service');
        }
        this.remember(service, entry);
        this.failedAt.delete(service);
        return instances;
      },
      (err: unknown) => {
        this.deps.log.debug({ err, service }, 'hub lookup failed; answering from the cache');
        this.failedAt.set(service, this.now());
        if (this.failedAt.size > this.maxServices) this.failedAt.delete(this.failedAt.keys().next().value ?? '');
        return undefined;
      },
    ).finally(() => this.inflight.delete(service));
    this.inflight.set(service, p);
    return p;
  }

  private remember(service: string, entry: { instances: ServiceInstance[]; fetchedAt: number }): void {
    this.memory.delete(service);
    this.memory.set(service, entry);
    if (this.memory.size > this.maxServices) this.memory.delete(this.memory.keys().next().value ?? '');
  }
}
