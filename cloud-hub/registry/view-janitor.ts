import type { EdgeNode } from '../../shared/api/index.js';
import type { Logger } from '../../shared/logger.js';
import type { ObjectCache } from '../cache/object-cache.js';
import type { GlobalRegistryView } from './global-view.js';
import type { RegistryMetrics } from './registry-metrics.js';

export interface ViewJanitorOptions {
  /** Tombstones are forgotten this long after the hub stored them, ms. Default 24 h (longer than agents keep theirs). */
  tombstoneTtlMs?: number;
  /** How often tombstones are checked, ms. Default 60 000. */
  intervalMs?: number;
}

/**
 * Keeps the global view to what exists: the records of a deleted node or unit go, and so do a
 * node's records in its old unit when it moves (it re-reports them in the new one). Old tombstones
 * are forgotten on a timer.
 */
export class ViewJanitor {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: { view: GlobalRegistryView; cache: ObjectCache; metrics: RegistryMetrics; log: Logger }, private readonly options: ViewJanitorOptions = {}) {}

  start(): void {
    const { view, cache, metrics, log } = this.deps;
    const drop = (reason: string, n: number, detail: Record<string, string>) => {
      if (n === 0) return;
      metrics.removed.inc({ reason }, n);
      log.info({ ...detail, records: n, reason }, 'registry records removed from the global view');
    };
    this.unsubscribe = cache.onChange((e) => {
      if (e.object.kind === 'EdgeNode') {
        const node = e.object.metadata.name;
        if (e.type === 'DELETED') return drop('node-deleted', view.removeWhere((_u, r) => r.origin === node), { node });
        const before = (e.oldObject as EdgeNode | undefined)?.spec.unit;
        const now = (e.object as EdgeNode).spec.unit;
        if (before !== undefined && before !== now) drop('node-moved', view.removeWhere((u, r) => u === before && r.origin === node), { node, unit: before });
      } else if (e.object.kind === 'NodeUnit' && e.type === 'DELETED') {
        const unit = e.object.metadata.name;
        drop('unit-deleted', view.removeWhere((u) => u === unit), { unit });
      }
    });
    // Nodes deleted while the hub was down.
    drop('node-deleted', view.removeWhere((_u, r) => !cache.get('EdgeNode', r.origin)), {});
    this.timer = setInterval(() => {
      // A throw in a timer would end the hub: a failed pass (view file busy, disk full) is retried next interval.
      try {
        drop('tombstone-expired', view.forgetTombstones(this.options.tombstoneTtlMs ?? 24 * 3_600_000), {});
      } catch (err) {
        log.error({ err }, 'forgetting old registry tombstones failed; will retry');
      }
    }, this.options.intervalMs ?? 60_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe?.();
  }
}
