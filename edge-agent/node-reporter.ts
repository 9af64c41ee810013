import type { InstanceStatus } from '../shared/api/index.js';
import type { CacheHealth } from './cache/cache-health.js';
import type { Outbox } from './cache/outbox.js';
import type { AgentMetrics } from './metrics.js';

/**
 * Periodically puts the node's own status (instances by phase, outbox depth and drops, cache
 * condition) in the outbox, when it changed. A queued node status replaces the previous one, so
 * queueing it does not itself change the depth it reports.
 */
export class NodeReporter {
  private timer: NodeJS.Timeout | undefined;
  private last = '';

  constructor(
    private readonly deps: { outbox: Outbox; cacheHealth: CacheHealth; metrics: AgentMetrics; statuses(): Map<string, InstanceStatus> },
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.report();
    this.timer = setInterval(() => this.report(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  report(): void {
    const { outbox, metrics } = this.deps;
    outbox.dropExpired();
    const instances: Record<string, number> = {};
    for (const s of this.deps.statuses().values()) instances[s.phase] = (instances[s.phase] ?? 0) + 1;
    const body = { instances, outboxDepth: outbox.depth(), droppedEvents: outbox.droppedEvents(), conditions: [this.deps.cacheHealth.current] };
    metrics.outboxDepth.set(body.outboxDepth);
    metrics.outboxDropped.set(body.droppedEvents);
    metrics.cacheHealthy.set(body.conditions[0]?.status === 'True' ? 1 : 0);
    metrics.instances.reset();
    for (const [phase, n] of Object.entries(instances)) metrics.instances.set({ phase }, n);
    const text = JSON.stringify(body);
    if (text === this.last) return;
    this.last = text;
    outbox.put('node-status', body, 'node');
  }
}
