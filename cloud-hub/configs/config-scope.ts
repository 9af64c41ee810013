import type { EdgeApp, Instance } from '../../shared/api/index.js';
import { configNamesOf, configsOfAppInUnit } from './config-refs.js';

/**
 * The configs a node may see: those the apps selecting its unit use (base and unit templates,
 * so a config arrives before the instances that need it) and those of the instances placed on
 * it (an instance of an older revision keeps its configs during a rollout). Callers pass only
 * the apps and instances in the node's scope: node authorization stays where it is decided.
 */
export function configsForNode(apps: readonly EdgeApp[], instances: readonly Instance[], unitName: string, unitLabels: Record<string, string> | undefined): Set<string> {
  const out = new Set<string>();
  for (const app of apps) for (const n of configsOfAppInUnit(app, unitName, unitLabels)) out.add(n);
  for (const inst of instances) for (const n of configNamesOf(inst.spec.template)) out.add(n);
  return out;
}

/** The config names an in-scope app or instance contributes to its node's set. */
export function configsOfObject(obj: EdgeApp | Instance, unitName: string, unitLabels: Record<string, string> | undefined): readonly string[] {
  return obj.kind === 'EdgeApp' ? configsOfAppInUnit(obj as EdgeApp, unitName, unitLabels) : configNamesOf((obj as Instance).spec.template);
}

/**
 * Who may need a change of one config: the units where an app selecting them uses it, and the
 * nodes holding an instance that uses it. `selects` is the hub's own app-to-unit rule.
 */
export function configAudience(
  config: string,
  apps: readonly EdgeApp[],
  instances: readonly Instance[],
  units: Iterable<{ name: string; labels: Record<string, string> | undefined }>,
  selects: (app: EdgeApp, unitName: string) => boolean,
): { units: Set<string>; nodes: Set<string> } {
  const out = { units: new Set<string>(), nodes: new Set<string>() };
  for (const u of units) {
    if (apps.some((a) => selects(a, u.name) && configsOfAppInUnit(a, u.name, u.labels).includes(config))) out.units.add(u.name);
  }
  for (const i of instances) if (i.spec.node && configNamesOf(i.spec.template).includes(config)) out.nodes.add(i.spec.node);
  return out;
}
