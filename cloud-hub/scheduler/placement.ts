import type { AppTemplate, EdgeNode, Instance } from '../../shared/api/index.js';
import { nodeFit, noFitMessage, requestsOf, type Requests } from './placement-fit.js';

/** What is placed on each node during one pass: requests, instances overall and per app. */
export class NodeUsage {
  private readonly used = new Map<string, Requests>();
  private readonly total = new Map<string, number>();
  private readonly perApp = new Map<string, number>();

  static of(instances: Instance[]): NodeUsage {
    const u = new NodeUsage();
    for (const i of instances) if (i.spec.node) u.add(i.spec.node, i.spec.app, requestsOf(i.spec.template));
    return u;
  }

  add(node: string, app: string, r: Requests, sign: 1 | -1 = 1): void {
    const cur = this.used.get(node) ?? { cpuMillis: 0, memoryBytes: 0 };
    this.used.set(node, { cpuMillis: cur.cpuMillis + sign * r.cpuMillis, memoryBytes: cur.memoryBytes + sign * r.memoryBytes });
    this.total.set(node, (this.total.get(node) ?? 0) + sign);
    this.perApp.set(`${app}\0${node}`, (this.perApp.get(`${app}\0${node}`) ?? 0) + sign);
  }

  requests(node: string): Requests {
    return this.used.get(node) ?? { cpuMillis: 0, memoryBytes: 0 };
  }

  /** Spread key: fewest instances of this app, then fewest overall, then by name. */
  rank(node: string, app: string): [number, number] {
    return [this.perApp.get(`${app}\0${node}`) ?? 0, this.total.get(node) ?? 0];
  }
}

export type Pick = { node: string; reason?: undefined } | { node: ''; reason: string };

/**
 * Picks the node of a unit for a NEW instance: the nodes that fit (see nodeFit), avoiding
 * untolerated PreferNoSchedule taints when another node fits, then spread. A cordoned unit takes
 * no new instances.
 */
export function pickNode(args: { unit: string; cordoned: boolean; nodes: EdgeNode[]; app: string; template: AppTemplate; usage: NodeUsage }): Pick {
  const { unit, nodes, app, template, usage } = args;
  if (args.cordoned) return { node: '', reason: `unit ${unit} is cordoned (no new instances)` };
  const need = requestsOf(template);
  const reasons: string[] = [];
  let best: { name: string; key: [number, number, number] } | undefined;
  for (const n of nodes) {
    const fit = nodeFit(n, template, usage.requests(n.metadata.name), need);
    if (!fit.fits) { reasons.push(fit.reason); continue; }
    const [a, t] = usage.rank(n.metadata.name, app);
    const key: [number, number, number] = [fit.avoid ? 1 : 0, a, t];
    if (!best || lessThan(key, n.metadata.name, best.key, best.name)) best = { name: n.metadata.name, key };
  }
  if (!best) return { node: '', reason: noFitMessage(unit, reasons) };
  usage.add(best.name, app, need);
  return { node: best.name };
}

function lessThan(a: number[], an: string, b: number[], bn: string): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return an < bn;
}

export function instanceName(app: string, unit: string, index: number): string {
  return `${app}-${unit}-${index}`;
}
