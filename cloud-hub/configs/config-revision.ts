import type { EdgeApp, EdgeConfig, NodeUnit } from '../../shared/api/index.js';
import { configNamesOf, configsOfAppInUnit } from './config-refs.js';

/**
 * The newest resourceVersion among the EdgeConfigs an app uses in the given units (0 when it
 * uses none, or they do not exist). Used by the scheduler (EdgeApp status.observedConfigRevision)
 * and by `outpost rollout status` (to know when the hub has seen a config change).
 */
export function configRevisionOf(app: EdgeApp, units: Iterable<NodeUnit>, configs: (name: string) => EdgeConfig | undefined): number {
  const names = new Set(configNamesOf(app.spec.template));
  for (const u of units) for (const n of configsOfAppInUnit(app, u.metadata.name, u.metadata.labels ?? {})) names.add(n);
  let max = 0;
  for (const n of names) max = Math.max(max, Number(configs(n)?.metadata.resourceVersion ?? 0));
  return max;
}
