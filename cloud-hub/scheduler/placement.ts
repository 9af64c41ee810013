import type { EdgeNode } from '../../shared/api/index.js';

/**
 * Picks the node for a new instance: among the unit's Ready nodes, the one running the fewest
 * instances of this app, then the fewest instances overall, then by name (deterministic).
 */
export function pickNode(candidates: EdgeNode[], appLoad: Map<string, number>, totalLoad: Map<string, number>): string | undefined {
  let best: EdgeNode | undefined;
  for (const n of candidates) {
    if (!best) { best = n; continue; }
    const a = [appLoad.get(n.metadata.name) ?? 0, totalLoad.get(n.metadata.name) ?? 0, n.metadata.name] as const;
    const b = [appLoad.get(best.metadata.name) ?? 0, totalLoad.get(best.metadata.name) ?? 0, best.metadata.name] as const;
    if (a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])))) best = n;
  }
  return best?.metadata.name;
}

export function instanceName(app: string, unit: string, index: number): string {
  return `${app}-${unit}-${index}`;
}

export function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
