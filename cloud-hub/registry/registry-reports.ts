import type { EdgeNode } from '../../shared/api/index.js';
import type { Logger } from '../../shared/logger.js';
import type { RegistryRecordReport } from '../../shared/protocol/frames.js';
import { recordKey, type RegistryRecord } from '../../shared/registry/records.js';
import type { ObjectCache } from '../cache/object-cache.js';
import type { GlobalRegistryView } from './global-view.js';
import type { RegistryMetrics } from './registry-metrics.js';

type Rejection = { seq: number; code: string; message: string };

/**
 * Stores the registry items of one report frame in the global view. Node authorization: a node
 * reports records of its own unit only, i.e. records whose origin is a node of its unit and whose
 * instance (if live) names that origin and that unit under its own key. Everything else is refused
 * (and acknowledged as refused, so the agent's outbox drains).
 */
export class RegistryReports {
  constructor(private readonly deps: { view: GlobalRegistryView; cache: ObjectCache; metrics: RegistryMetrics; log: Logger }) {}

  handle(scope: { node: string; unit: string }, items: readonly RegistryRecordReport[]): { rejected: Rejection[] } {
    const rejected: Rejection[] = [];
    const accepted: RegistryRecord[] = [];
    for (const item of items) {
      const problem = this.problem(scope, item.body);
      if (problem) {
        rejected.push({ seq: item.seq, code: problem.code, message: problem.message });
        this.deps.metrics.refused.inc({ reason: problem.reason });
        continue;
      }
      accepted.push(item.body as RegistryRecord);
    }
    if (accepted.length > 0) {
      const changed = this.deps.view.merge(scope.unit, accepted);
      this.deps.metrics.merged.inc(changed.length);
      this.deps.metrics.stale.inc(accepted.length - changed.length);
    }
    // One line per frame, not per item: a misconfigured agent may send thousands.
    if (rejected.length > 0) this.deps.log.warn({ node: scope.node, unit: scope.unit, refused: rejected.length, first: rejected[0] }, 'registry report items refused');
    return { rejected };
  }

  private problem(scope: { node: string; unit: string }, r: RegistryRecordReport['body']): { code: string; reason: string; message: string } | undefined {
    const origin = this.deps.cache.get('EdgeNode', r.origin) as EdgeNode | undefined;
    if (!origin) return { code: 'OUTPOST_NOT_FOUND', reason: 'unknown-origin', message: `record ${r.key}: origin node ${r.origin} does not exist` };
    if (origin.spec.unit !== scope.unit) {
      return { code: 'OUTPOST_FORBIDDEN', reason: 'other-unit', message: `record ${r.key}: node ${scope.node} may not report records of node ${r.origin}, which is not in unit ${scope.unit}` };
    }
    const i = r.instance;
    if (!i) return r.key.includes('/') ? undefined : { code: 'OUTPOST_BAD_REQUEST', reason: 'bad-key', message: `record key ${r.key} is not service/id` };
    if (i.unit !== scope.unit) return { code: 'OUTPOST_FORBIDDEN', reason: 'other-unit', message: `record ${r.key}: node ${scope.node} may not report an instance of unit ${i.unit}` };
    if (i.node !== r.origin) return { code: 'OUTPOST_BAD_REQUEST', reason: 'node-mismatch', message: `record ${r.key}: instance node ${i.node} is not the record's origin ${r.origin}` };
    if (r.key !== recordKey(i.service, i.id)) return { code: 'OUTPOST_BAD_REQUEST', reason: 'bad-key', message: `record key ${r.key} is not ${recordKey(i.service, i.id)}` };
    return undefined;
  }
}
