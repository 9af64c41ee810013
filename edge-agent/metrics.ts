import { Counter, Gauge, type Registry } from 'prom-client';

export function createAgentMetrics(registry: Registry) {
  const r = [registry];
  return {
    connected: new Gauge({ name: 'outpost_agent_hub_connected', help: '1 while the hub link is up', registers: r }),
    appliedRevision: new Gauge({ name: 'outpost_agent_cache_revision', help: 'Store revision applied to the cache', registers: r }),
    outboxDepth: new Gauge({ name: 'outpost_agent_outbox_depth', help: 'Rows waiting in the outbox', registers: r }),
    outboxDropped: new Gauge({ name: 'outpost_agent_outbox_dropped_events', help: 'Events dropped by the outbox budget since start', registers: r }),
    instances: new Gauge({ name: 'outpost_agent_instances', help: 'Instances by phase', labelNames: ['phase'], registers: r }),
    instanceRestarts: new Counter({ name: 'outpost_agent_instance_restarts_total', help: 'Instance restarts', registers: r }),
    cacheHealthy: new Gauge({ name: 'outpost_agent_cache_healthy', help: '0 while the cache is quarantined and not yet rebuilt', registers: r }),
    reconnects: new Counter({ name: 'outpost_agent_reconnects_total', help: 'Hub link (re)connections', registers: r }),
  };
}

export type AgentMetrics = ReturnType<typeof createAgentMetrics>;
