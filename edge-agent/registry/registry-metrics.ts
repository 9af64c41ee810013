import { Counter, Gauge, Histogram, type Registry as MetricsRegistry } from 'prom-client';

/** What the gauges read when scraped (counting at scrape time keeps writes cheap). */
export interface RegistryCounts {
  instances: number;
  services: number;
  tombstones: number;
}

/** The local registry's metrics (README "Metrics"); peer replication adds its own. */
export function createRegistryMetrics(registry: MetricsRegistry, counts: () => RegistryCounts) {
  const r = [registry];
  return {
    instances: new Gauge({ name: 'outpost_agent_registry_instances', help: 'Live service instances held (own and replicated)', registers: r, collect() { this.set(counts().instances); } }),
    services: new Gauge({ name: 'outpost_agent_registry_services', help: 'Services with at least one live instance', registers: r, collect() { this.set(counts().services); } }),
    tombstones: new Gauge({ name: 'outpost_agent_registry_tombstones', help: 'Deletions kept so that old copies cannot come back', registers: r, collect() { this.set(counts().tombstones); } }),
    subscribers: new Gauge({ name: 'outpost_agent_registry_subscribers', help: 'Open watches: blocking queries and streams', labelNames: ['kind'], registers: r }),
    registerToVisible: new Histogram({
      name: 'outpost_agent_registry_register_to_visible_seconds',
      help: 'From a registration request arriving to the change being committed and visible to local lookups and watches',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: r,
    }),
    ttlExpiries: new Counter({ name: 'outpost_agent_registry_ttl_expiries_total', help: 'TTL leases that missed their heartbeat', labelNames: ['outcome'], registers: r }),
    dnsQueries: new Counter({ name: 'outpost_agent_registry_dns_queries_total', help: 'DNS queries answered', labelNames: ['transport', 'rcode'], registers: r }),
  };
}

export type RegistryMetrics = ReturnType<typeof createRegistryMetrics>;
