import { Counter, type Registry } from 'prom-client';

/** Agent metrics of the hub's global view (README "Global view", "Other units"). */
export function createHubViewMetrics(registry: Registry) {
  const r = [registry];
  return {
    remoteLookups: new Counter({
      name: 'outpost_agent_registry_remote_lookups_total',
      help: 'Lookups of other units\' instances, by where the answer came from: hub (first answer, fetched now), cache (cached answer younger than 5 s), stale (older cached answer; refreshed in the background when the link is up), none (nothing known)',
      labelNames: ['source'],
      registers: r,
    }),
    rereported: new Counter({ name: 'outpost_agent_registry_rereported_records_total', help: 'Records re-queued for the hub after a digest comparison at connect found their origin differing', registers: r }),
  };
}

export type HubViewMetrics = ReturnType<typeof createHubViewMetrics>;
