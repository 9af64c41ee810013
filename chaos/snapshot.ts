import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { AnyObject, EdgeApp, EdgeNode, Instance, InstanceStatus, NodeUnit } from '../shared/api/index.js';
import { objectDigest } from '../shared/hash.js';
import { appSelectsUnit, projectForNode } from '../cloud-hub/sessions/scope.js';
import { API, type HubClient } from './api.js';
import { httpRequest } from './http.js';
import type { AgentSpec, ChaosCluster } from './cluster.js';
import { readMarkers, type StartRecord } from './markers.js';
import { scanInstanceProcs, type InstanceProc } from './procs.js';

/** The objects the hub holds, as the API lists them. */
export interface HubState {
  units: NodeUnit[];
  apps: EdgeApp[];
  instances: Instance[];
  nodes: EdgeNode[];
}

/** The agent's GET /status document (the fields the harness reads). */
export interface AgentStatusDoc {
  cloud: string;
  appliedRevision: number;
  outboxDepth: number;
  instances: Record<string, InstanceStatus>;
}

/** What an agent's cache.db holds, read directly (read-only) from its file. */
export interface AgentCacheState {
  /** `kind/name` -> digest of the cached object. */
  objects: Map<string, string>;
  appliedRevision: number;
  outboxDepth: number;
}

export interface AgentView {
  spec: AgentSpec;
  status: AgentStatusDoc | undefined;
  statusError?: string;
  cache: AgentCacheState | undefined;
  cacheError?: string;
}

/** Everything observed at one moment: the hub, each agent, the processes and the start records. */
export interface Snapshot {
  at: number;
  hub: HubState;
  agents: AgentView[];
  procs: InstanceProc[];
  markers: Map<string, StartRecord[]>;
}

export async function readHub(api: HubClient, deadlineMs = 10_000): Promise<HubState> {
  const [units, apps, instances, nodes] = await Promise.all([
    api.list<NodeUnit>('nodeunits', deadlineMs),
    api.list<EdgeApp>('edgeapps', deadlineMs),
    api.list<Instance>('instances', deadlineMs),
    api.list<EdgeNode>('edgenodes', deadlineMs),
  ]);
  return { units: units.items, apps: apps.items, instances: instances.items, nodes: nodes.items };
}

export async function readAgentStatus(localApi: string | undefined): Promise<AgentStatusDoc> {
  if (!localApi) throw new Error('agent has no local API (not running)');
  const res = await httpRequest(`${localApi}/status`, { timeoutMs: 2000 });
  if (res.status !== 200) throw new Error(`GET /status: HTTP ${res.status}`);
  return JSON.parse(res.text) as AgentStatusDoc;
}

/** Reads cache.db without writing to it (the agent may be writing at the same time: WAL). */
export function readAgentCache(dataDir: string): AgentCacheState {
  const db = new Database(join(dataDir, 'cache.db'), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 2000');
    return db.transaction(() => {
      const objects = new Map<string, string>();
      for (const r of db.prepare('SELECT kind, name, digest FROM desired_objects').all() as { kind: string; name: string; digest: string }[]) {
        // UnitPeers (registry peer list, issue 6) carries the unit credential: the agent seals its
        // digest with the node key and the API redacts it, so it cannot be compared from outside.
        if (r.kind === 'UnitPeers') continue;
        objects.set(`${r.kind}/${r.name}`, r.digest);
      }
      const rev = db.prepare("SELECT value FROM agent_meta WHERE key = 'applied_revision'").get() as { value: string } | undefined;
      const depth = db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number };
      return { objects, appliedRevision: Number(rev?.value ?? 0), outboxDepth: depth.n };
    })();
  } finally {
    db.close();
  }
}

export async function takeSnapshot(deps: { api: HubClient; cluster: ChaosCluster; agents: AgentSpec[]; runId: string; markerDir: string }): Promise<Snapshot> {
  const hub = await readHub(deps.api);
  const agents = await Promise.all(deps.agents.map(async (spec): Promise<AgentView> => {
    const view: AgentView = { spec, status: undefined, cache: undefined };
    try {
      view.status = await readAgentStatus(deps.cluster.localApi(spec.name));
    } catch (err) {
      view.statusError = err instanceof Error ? err.message : String(err);
    }
    try {
      view.cache = readAgentCache(deps.cluster.agentDir(spec.name));
    } catch (err) {
      view.cacheError = err instanceof Error ? err.message : String(err);
    }
    return view;
  }));
  return { at: Date.now(), hub, agents, procs: scanInstanceProcs(deps.runId), markers: readMarkers(deps.markerDir) };
}

/**
 * What the hub computes for a node, from the API objects with the hub's own scope rules
 * (cloud-hub/sessions/scope.ts): its unit's NodeUnit, the EdgeApps that select the unit as the
 * node is shown them (projectForNode), and the Instances placed on the node. `kind/name` -> digest.
 */
export function expectedSet(hub: HubState, node: AgentSpec): Map<string, string> {
  const out = new Map<string, string>();
  const scope = { node: node.name, unit: node.unit };
  const add = (o: AnyObject) => out.set(`${o.kind}/${o.metadata.name}`, objectDigest(o));
  const unit = hub.units.find((u) => u.metadata.name === node.unit);
  if (unit) add(unit);
  for (const app of hub.apps) if (appSelectsUnit(app, node.unit, unit)) add(projectForNode(app, scope));
  for (const inst of hub.instances) if (inst.spec.node === node.name) add(inst);
  return out;
}

/** Differences between the cached and the expected set: missing, stale (other digest) and extra keys. */
export function diffSets(cached: Map<string, string>, expected: Map<string, string>): { missing: string[]; stale: string[]; extra: string[] } {
  const missing: string[] = [];
  const stale: string[] = [];
  const extra: string[] = [];
  for (const [k, d] of expected) {
    const c = cached.get(k);
    if (c === undefined) missing.push(k);
    else if (c !== d) stale.push(k);
  }
  for (const k of cached.keys()) if (!expected.has(k)) extra.push(k);
  return { missing: missing.sort(), stale: stale.sort(), extra: extra.sort() };
}

/**
 * Why an agent has not converged yet (empty when it has): connected and Ready, its cache equal to
 * what the hub computes for it at the hub's applied revision, its outbox drained, and every
 * instance placed on it running the current template as exactly one process, with that process's
 * start on record and its status at the hub.
 */
export function agentProblems(snap: Snapshot, view: AgentView): string[] {
  const problems: string[] = [];
  const name = view.spec.name;
  const node = snap.hub.nodes.find((n) => n.metadata.name === name);
  if (!node) return [`no EdgeNode ${name} at the hub`];
  if (node.status?.phase !== 'Ready') problems.push(`phase ${node.status?.phase ?? 'none'} at the hub`);
  if (!view.status) problems.push(`local API: ${view.statusError ?? 'no answer'}`);
  else if (!view.status.cloud.startsWith('connected')) problems.push(`agent says cloud ${view.status.cloud}`);
  if (!view.cache) {
    problems.push(`cache.db: ${view.cacheError ?? 'unreadable'}`);
  } else {
    const d = diffSets(view.cache.objects, expectedSet(snap.hub, view.spec));
    if (d.missing.length + d.stale.length + d.extra.length > 0) problems.push(`cache differs: missing [${d.missing.join(' ')}] stale [${d.stale.join(' ')}] extra [${d.extra.join(' ')}]`);
    if (view.cache.appliedRevision !== node.status?.appliedRevision) problems.push(`applied revision ${view.cache.appliedRevision}, hub records ${node.status?.appliedRevision ?? 'none'}`);
    if (view.cache.outboxDepth !== 0) problems.push(`outbox depth ${view.cache.outboxDepth}`);
  }
  const mine = snap.hub.instances.filter((i) => i.spec.node === name);
  const procsHere = snap.procs.filter((p) => p.node === name);
  for (const inst of mine) {
    const iname = inst.metadata.name;
    const gen = inst.spec.template.processes?.[0]?.env?.GEN ?? '';
    const st = view.status?.instances[iname];
    const procs = procsHere.filter((p) => p.instance === iname);
    if (!st || st.phase !== 'Running' || st.templateHash !== inst.spec.templateHash || st.pid === undefined) {
      problems.push(`${iname}: agent reports ${st ? `${st.phase} ${st.templateHash ?? ''} pid ${st.pid ?? '-'}` : 'nothing'}, want Running ${inst.spec.templateHash}`);
      continue;
    }
    if (procs.length !== 1 || procs[0]?.pid !== st.pid || procs[0]?.gen !== gen) {
      problems.push(`${iname}: processes ${procs.map((p) => `${p.pid}/${p.gen}`).join(',') || 'none'}, agent reports pid ${st.pid}, want one with ${gen}`);
      continue;
    }
    const starts = (snap.markers.get(iname) ?? []).filter((s) => s.node === name);
    if (starts.at(-1)?.pid !== st.pid) problems.push(`${iname}: last recorded start is pid ${starts.at(-1)?.pid ?? '-'}, running ${st.pid}`);
    const hs = inst.status;
    if (hs?.phase !== 'Running' || hs.pid !== st.pid || hs.templateHash !== inst.spec.templateHash || hs.node !== name) {
      problems.push(`${iname}: hub status ${hs?.phase ?? 'none'} pid ${hs?.pid ?? '-'} node ${hs?.node ?? '-'}, agent runs pid ${st.pid}`);
    }
  }
  const wanted = new Set(mine.map((i) => i.metadata.name));
  const extraStatus = Object.keys(view.status?.instances ?? {}).filter((n) => !wanted.has(n));
  if (extraStatus.length) problems.push(`agent still supervises removed instances ${extraStatus.join(' ')}`);
  const orphans = procsHere.filter((p) => !wanted.has(p.instance));
  if (orphans.length) problems.push(`processes of instances not placed here: ${orphans.map((p) => `${p.instance}/${p.pid}`).join(' ')}`);
  return problems;
}

/** Events of one node as the hub holds them (newest 5000). */
export interface HubEventItem {
  node: string;
  seq: number;
  type: string;
  reason: string;
  message: string;
  object: { kind: string; name: string };
  time: string;
}

export async function readEvents(api: HubClient, node: string, objectName?: string): Promise<HubEventItem[]> {
  const q = new URLSearchParams({ node, limit: '5000', ...(objectName ? { object: objectName } : {}) });
  const res = await api.retry<{ items: HubEventItem[] }>('GET', `${API}/events?${q.toString()}`, undefined, { deadlineMs: 10_000 });
  return res.items;
}
