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

/** Annotation naming the label keys the node's join token gave it (set by an operator, so trusted). */
export const TRUSTED_LABELS_ANNOTATION = 'outpost.dev/trusted-labels';

/**
 * The labels unit selectors may match: those the join token gave (an operator's word), never
 * those the agent claims for itself (`--labels`: any holder of a join token could otherwise
 * label itself into another unit and receive its configs and secrets), nor those a unit stamped.
 */
export function trustedLabels(node: EdgeNode): Record<string, string> {
  const trusted = new Set((node.metadata.annotations?.[TRUSTED_LABELS_ANNOTATION] ?? '').split(',').filter(Boolean));
  const stamped = new Set(stampedLabelKeys(node));
  return Object.fromEntries(Object.entries(node.metadata.labels ?? {}).filter(([k]) => trusted.has(k) && !stamped.has(k)));
}

/**
 * A node's unit: the first unit (by name) that lists it in `spec.nodes`; else the first whose
 * non-empty `spec.selector` matches the node's trusted labels (see trustedLabels); else the unit
 * it joined. (A node cannot join under a name another unit lists: see api/join.ts.)
 */
export function resolveMembership(node: EdgeNode, units: NodeUnit[]): Membership {
  const sorted = [...units].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const labels = trustedLabels(node);
  const byName = sorted.filter((u) => u.spec?.nodes?.includes(node.metadata.name)).map((u) => u.metadata.name);
  const bySelector = sorted
    .filter((u) => Object.keys(u.spec?.selector?.matchLabels ?? {}).length > 0 && matchesLabels(labels, u.spec?.selector?.matchLabels))
    .map((u) => u.metadata.name);
  const claims = [...byName, ...bySelector.filter((u) => !byName.includes(u))];
  const winner = claims[0];
  if (winner !== undefined) return { unit: winner, by: byName.includes(winner) ? 'nodes' : 'selector', alsoClaimedBy: claims.slice(1) };
  return { unit: node.spec.joinUnit ?? node.spec.unit, by: 'join', alsoClaimedBy: [] };
}
