import type { EdgeApp } from '../../shared/api/index.js';
import { renderForUnit } from '../../shared/api/render.js';
import { configNamesOf } from '../../shared/api/workload.js';

export { configNamesOf };

// Objects in the hub's cache are replaced, never mutated, on change: memoizing per object is safe.
const byApp = new WeakMap<object, Map<string, readonly string[]>>();

/**
 * The configs an app uses in one unit: those of its base template and of the unit's rendered
 * template (overrides and JSON patches may add or swap configs). An override that cannot apply
 * to the unit leaves the base template's configs.
 */
export function configsOfAppInUnit(app: EdgeApp, unitName: string, unitLabels: Record<string, string> | undefined): readonly string[] {
  let perUnit = byApp.get(app);
  if (!perUnit) byApp.set(app, (perUnit = new Map()));
  const labelsKey = `${unitName}\u0000${JSON.stringify(unitLabels ?? {})}`;
  const memo = perUnit.get(labelsKey);
  if (memo) return memo;
  const names = new Set(configNamesOf(app.spec.template));
  if (app.spec.overrides?.length) {
    try {
      for (const n of configNamesOf(renderForUnit(app.spec, unitName, unitLabels).template)) names.add(n);
    } catch {
      // The scheduler reports an override that cannot apply in the app's status.
    }
  }
  const out = [...names].sort();
  if (perUnit.size >= 10_000) perUnit.clear(); // unit labels churning under an unchanged app
  perUnit.set(labelsKey, out);
  return out;
}
