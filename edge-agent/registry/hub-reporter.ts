import type { Logger } from '../../shared/logger.js';
import { originDigests } from '../../shared/registry/digest.js';
import type { Outbox, OutboxPut } from '../cache/outbox.js';
import type { HubRegistryApi } from './hub-registry-api.js';
import type { HubViewMetrics } from './hub-view-metrics.js';
import type { Registry, RegistryRecord } from './records.js';

export interface HubReporterOptions {
  /** Changes are gathered this long and queued in one outbox transaction, ms. Default 50. */
  flushDelayMs?: number;
  /** Queue at once when this many changes are pending. Default 500. */
  maxPending?: number;
}

/**
 * Reports the unit's registry to the hub (README "Global view"): every record this node holds
 * (own and replicated, so the hub's view survives one node's uplink being down) goes into the
 * outbox as a `registry-record` item coalesced per record key, so only the newest version of
 * each record waits there. Changes are gathered for a few ms and queued in one transaction: a
 * crash in that window loses nothing for good, because at every (re)connect the reporter compares
 * per-origin digests with the hub and re-queues every record of each origin that differs.
 */
export class HubReporter {
  private pending = new Map<string, RegistryRecord>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private resync: AbortController | undefined;
  private readonly flushDelayMs: number;
  private readonly maxPending: number;

  constructor(private readonly deps: { registry: Registry; outbox: Outbox; hub: HubRegistryApi; log: Logger; metrics?: HubViewMetrics }, options: HubReporterOptions = {}) {
    this.flushDelayMs = options.flushDelayMs ?? 50;
    this.maxPending = options.maxPending ?? 500;
  }

  start(): void {
    this.unsubscribe = this.deps.registry.onChange((changed) => {
      for (const r of changed) this.pending.set(r.key, r);
      if (this.pending.size >= this.maxPending) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.flushDelayMs);
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.resync?.abort();
    this.flush();
  }

  /** Called by the hub link: at each connect, bring the hub's view of this unit up to date. */
  linkChanged(connected: boolean): void {
    this.resync?.abort();
    this.resync = undefined;
    if (!connected) return;
    const ac = new AbortController();
    this.resync = ac;
    this.resyncWithHub(ac.signal).catch((err: unknown) => {
      if (!ac.signal.aborted) this.deps.log.warn({ err }, 'registry digest comparison with the hub failed; will retry at the next connect');
    });
  }

  /** Re-queues every record of each origin whose digest differs from the hub's. Returns how many. */
  async resyncWithHub(signal?: AbortSignal): Promise<number> {
    const hubDigests = await this.deps.hub.digest(signal);
    if (signal?.aborted) return 0;
    const unit = this.deps.registry.unit;
    const mine = [...this.deps.registry.records()].filter((r) => !r.instance || r.instance.unit === unit);
    const local = originDigests(mine);
    const differs = new Set<string>();
    for (const origin of new Set([...Object.keys(local), ...Object.keys(hubDigests)])) {
      const a = local[origin];
      const b = hubDigests[origin];
      if (a?.hash !== b?.hash || a?.count !== b?.count) differs.add(origin);
    }
    const records = mine.filter((r) => differs.has(r.origin));
    this.queue(records);
    this.deps.metrics?.rereported.inc(records.length);
    if (records.length > 0) this.deps.log.info({ origins: [...differs], records: records.length }, 'registry view at the hub differs; re-reporting those origins');
    return records.length;
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const records = [...this.pending.values()];
    this.pending = new Map();
    this.queue(records);
  }

  private queue(records: readonly RegistryRecord[]): void {
    const puts: OutboxPut[] = records.map((r) => ({ kind: 'registry-record', body: r, key: `registry/${r.key}` }));
    for (let i = 0; i < puts.length; i += 1000) {
      try {
        this.deps.outbox.putBatch(puts.slice(i, i + 1000));
      } catch (err) {
        // E.g. disk full: the next digest comparison at connect re-queues what is missing.
        this.deps.log.error({ err, records: puts.length - i }, 'could not queue registry records for the hub');
        return;
      }
    }
  }
}
