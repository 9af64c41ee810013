import { UNIT_LABEL, type EdgeNode, type NodeUnit, type Taint } from '../../shared/api/index.js';

/** Annotation listing the label keys a unit stamped on the node (so they can be removed when it leaves). */
export const STAMPED_LABELS_ANNOTATION = 'outpost.dev/stamped-labels';

export function stampedLabelKeys(node: EdgeNode): string[] {
  const v = node.metadata.annotations?.[STAMPED_LABELS_ANNOTATION];
  return v ? v.split(',').filter(Boolean) : [];
}

/**
 * The node as member of `unit`: spec.unit set, outpost.dev/unit and the unit's nodeLabels
 * stamped (labels stamped before and no longer wanted removed; the node's own labels kept unless
 * the unit overrides a key), taints = the unit's taints, joinUnit remembered.
 */
export function stampNode(node: EdgeNode, unitName: string, unit: NodeUnit | undefined): EdgeNode {
  const wanted: Record<string, string> = { ...unit?.spec?.nodeLabels, [UNIT_LABEL]: unitName };
  const previouslyStamped = new Set(stampedLabelKeys(node));
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(node.metadata.labels ?? {})) if (!previouslyStamped.has(k) || k in wanted) labels[k] = v;
  Object.assign(labels, wanted);
  const annotations = { ...node.metadata.annotations, [STAMPED_LABELS_ANNOTATION]: Object.keys(wanted).sort().join(',') };
  const taints: Taint[] = (unit?.spec?.taints ?? []).map((t) => ({ ...t }));
  const { taints: _old, ...restSpec } = node.spec;
  return {
    ...node,
    metadata: { ...node.metadata, labels, annotations },
    spec: { ...restSpec, unit: unitName, joinUnit: node.spec.joinUnit ?? node.spec.unit, ...(taints.length ? { taints } : {}) },
  };
}
