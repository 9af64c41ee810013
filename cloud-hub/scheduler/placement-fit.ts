import { workloadOf, type AppTemplate, type EdgeNode, type Taint, type Toleration } from '../../shared/api/index.js';
import { matchesLabels } from '../../shared/labels.js';
import { parseCpuMillis, parseMemoryBytes } from '../../shared/quantity.js';

/** What an instance reserves on its node (template requests), and what a node has used. */
export interface Requests {
  cpuMillis: number;
  memoryBytes: number;
}

/** Requests of a template; a template without a workload or with an unreadable quantity (validated elsewhere) reserves nothing. */
export function requestsOf(template: AppTemplate): Requests {
  try {
    const req = workloadOf(template).spec.resources?.requests;
    return { cpuMillis: req?.cpu ? parseCpuMillis(req.cpu) : 0, memoryBytes: req?.memory ? parseMemoryBytes(req.memory) : 0 };
  } catch {
    return { cpuMillis: 0, memoryBytes: 0 };
  }
}

/** Kubernetes matching: key (empty key with Exists: every key), Exists or Equal value, effect (empty: every effect). */
export function tolerates(tolerations: Toleration[] | undefined, taint: Taint): boolean {
  return (tolerations ?? []).some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    const exists = t.operator === 'Exists';
    if (!t.key) return exists;
    if (t.key !== taint.key) return false;
    return exists || (t.value ?? '') === (taint.value ?? '');
  });
}

export function taintText(t: Taint): string {
  return `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`;
}

/** Whether a node can take one more instance of a template; a soft `avoid` for untolerated PreferNoSchedule. */
export type Fit = { fits: true; avoid: boolean } | { fits: false; reason: string };

/**
 * The hard rules for a NEW instance on a node: Ready, schedulable, nodeSelector, NoSchedule
 * taints, capacity (requests of the instances already there plus this one; a node that reports no
 * capacity is unlimited). Unit cordon is the caller's business (it applies to every node).
 */
export function nodeFit(node: EdgeNode, template: AppTemplate, used: Requests, need: Requests): Fit {
  if (node.status?.phase !== 'Ready') return { fits: false, reason: 'not Ready' };
  if (node.spec.unschedulable) return { fits: false, reason: 'unschedulable' };
  if (template.nodeSelector && !matchesLabels(node.metadata.labels, template.nodeSelector)) return { fits: false, reason: 'not matching nodeSelector' };
  const taints = node.spec.taints ?? [];
  const hard = taints.find((t) => t.effect === 'NoSchedule' && !tolerates(template.tolerations, t));
  if (hard) return { fits: false, reason: `tainted ${taintText(hard)}` };
  const cap = node.status.capacity;
  if (cap) {
    if (need.cpuMillis > 0 && used.cpuMillis + need.cpuMillis > cap.cpus * 1000) return { fits: false, reason: 'lack cpu' };
    if (need.memoryBytes > 0 && used.memoryBytes + need.memoryBytes > cap.memoryBytes) return { fits: false, reason: 'lack memory' };
  }
  const avoid = taints.some((t) => t.effect === 'PreferNoSchedule' && !tolerates(template.tolerations, t));
  return { fits: true, avoid };
}

/** "no node of unit X fits: 2 lack memory, 1 tainted dedicated=gpu:NoSchedule". */
export function noFitMessage(unit: string, reasons: string[]): string {
  if (reasons.length === 0) return `no node of unit ${unit} fits: the unit has no nodes`;
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const parts = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([r, n]) => `${n} ${n === 1 ? r.replace(/^lack /, 'lacks ') : r}`);
  return `no node of unit ${unit} fits: ${parts.join(', ')}`;
}
