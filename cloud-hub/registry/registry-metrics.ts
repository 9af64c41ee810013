import { Counter, Gauge, type Registry } from 'prom-client';

/** Hub metrics of the global registry view (issue 6). Sizes are read at scrape time. */
export function createRegistryMetrics(registry: Registry, size: () => { records: number; instances: number; services: number }) {
  const r = [registry];
  return {
    services: new Gauge({ name: 'outpost_hub_registry_services', help: 'Services with at least one live instance in the global view', registers: r, collect() { this.set(size().services); } }),
    instances: new Gauge({ name: 'outpost_hub_registry_instances', help: 'Live service instances in the global view, all units', registers: r, collect() { this.set(size().instances); } }),
    records: new Gauge({ name: 'outpost_hub_registry_records', help: 'Records held by the global view (live and tombstones)', registers: r, collect() { this.set(size().records); } }),
    merged: new Counter({ name: 'outpost_hub_registry_records_merged_total', help: 'Reported registry records that changed the global view', registers: r }),
    stale: new Counter({ name: 'outpost_hub_registry_records_stale_total', help: 'Reported registry records already held at that version or newer (re-sent, or reported by several nodes of a unit)', registers: r }),
    refused: new Counter({ name: 'outpost_hub_registry_reports_refused_total', help: 'Registry report items refused, by reason (other-unit, unknown-origin, bad-key, node-mismatch)', labelNames: ['reason'], registers: r }),
    removed: new Counter({ name: 'outpost_hub_registry_records_removed_total', help: 'Records dropped from the global view, by reason (node-deleted, node-moved, unit-deleted, tombstone-expired)', labelNames: ['reason'], registers: r }),
    remoteLookups: new Counter({ name: 'outpost_hub_registry_agent_lookups_total', help: 'Lookups of other units\' services by agents', registers: r }),
  };
}

export type RegistryMetrics = ReturnType<typeof createRegistryMetrics>;
