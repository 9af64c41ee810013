import type { EdgeNode, NodeUnit } from '../../shared/api/index.js';
import { matchesLabels } from '../../shared/labels.js';
import { stampedLabelKeys } from './stamping.js';

export interface Membership {
  /** The unit the node belongs to. */
  unit: string;
  /** Why: listed by name in the unit, matched by its selector, or the unit it joined. */
  by: 'nodes' | 'selector' | 'join';
  /** Other units that claim the node too (by name or selector) and lost. */
  alsoClaimedBy: string[];
}

/** The node's labels as the node itself has them: without what its unit stamped. */
export function ownLabels(node: EdgeNode): Record<string, string> {
  const stamped = new Set(stampedLabelKeys(node));
  return Object.fromEntries(Object.entries(node.metadata.labels ?? {}).filter(([k]) => !stamped.has(k)));
}

/**
 * A node's unit: the first unit (by name) that lists it in `spec.nodes`; else the first whose
 * non-empty `spec.selector` matches the node's own labels; else the unit it joined. Stamped
 * labels are not matched against, so that a unit's stamping never pulls a node into another unit.
 */
export function resolveMembership(node: EdgeNode, units: NodeUnit[]): Membership {
  const sorted = [...units].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const labels = ownLabels(node);
  const byName = sorted.filter((u) => u.spec?.nodes?.includes(node.metadata.name)).map((u) => u.metadata.name);
  const bySelector = sorted
    .filter((u) => Object.keys(u.spec?.selector?.matchLabels ?? {}).length > 0 && matchesLabels(labels, u.spec?.selector?.matchLabels))
    .map((u) => u.metadata.name);
  const claims = [...byName, ...bySelector.filter((u) => !byName.includes(u))];
  const winner = claims[0];
  if (winner !== undefined) return { unit: winner, by: byName.includes(winner) ? 'nodes' : 'selector', alsoClaimedBy: claims.slice(1) };
  return { unit: node.spec.joinUnit ?? node.spec.unit, by: 'join', alsoClaimedBy: [] };
}
