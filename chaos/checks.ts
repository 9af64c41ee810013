import { accountInstance, type InstanceAccount } from './accounting.js';
import type { Refusal } from './agent-logs.js';
import type { AgentSpec } from './cluster.js';
import type { CrashRecord } from './faults.js';
import { startsOn } from './markers.js';
import { ALLOWED_PHASES, type Observer } from './observer.js';
import { agentProblems, diffSets, expectedSet, type HubEventItem, type Snapshot } from './snapshot.js';

export interface CheckResult {
  name: string;
  pass: boolean;
  /** One line each; for a failure, what is wrong, precisely enough to start debugging. */
  details: string[];
}

const END_REASONS = new Set(['Exited', 'Stopped', 'Killed']);

/** Every agent's cache equals what the hub computes for its node, at the revision the hub records. */
export function checkDesiredState(snap: Snapshot): CheckResult {
  const details: string[] = [];
  for (const view of snap.agents) {
    const name = view.spec.name;
    if (!view.cache) {
      details.push(`${name}: cache.db unreadable: ${view.cacheError ?? '?'}`);
      continue;
    }
    const expected = expectedSet(snap.hub, view.spec);
    const d = diffSets(view.cache.objects, expected);
    if (d.missing.length) details.push(`${name}: lost (the hub wants, the cache lacks): ${d.missing.join(' ')}`);
    if (d.stale.length) details.push(`${name}: stale (other content than the hub's): ${d.stale.join(' ')}`);
    if (d.extra.length) details.push(`${name}: extra (deleted or out of scope at the hub): ${d.extra.join(' ')}`);
    const node = snap.hub.nodes.find((n) => n.metadata.name === name);
    const hubRev = node?.status?.appliedRevision;
    if (view.cache.appliedRevision !== hubRev) details.push(`${name}: applied revision ${view.cache.appliedRevision}, EdgeNode.status.appliedRevision ${hubRev ?? 'unset'}`);
    if (view.status && view.status.appliedRevision !== view.cache.appliedRevision) details.push(`${name}: /status says revision ${view.status.appliedRevision}, cache.db ${view.cache.appliedRevision}`);
  }
  const objects = snap.agents.reduce((n, v) => n + (v.cache?.objects.size ?? 0), 0);
  return { name: 'desired state: every cache equals the hub, applied revision agrees', pass: details.length === 0, details: details.length ? details : [`${snap.agents.length} agents, ${objects} cached objects compared by digest`] };
}

export function checkOutbox(snap: Snapshot): CheckResult {
  const details: string[] = [];
  for (const v of snap.agents) {
    const depth = v.cache?.outboxDepth;
    if (depth !== 0) details.push(`${v.spec.name}: outbox holds ${depth ?? 'unknown'} row(s)`);
  }
  return { name: 'outbox drained on every agent', pass: details.length === 0, details };
}

export interface EventChecks {
  unique: CheckResult;
  exactlyOnce: CheckResult;
  /** Events the hub holds, by reason (for the report). */
  reasons: Record<string, number>;
}

/**
 * Reports reached the hub exactly once in effect. Each process start left one line (with its
 * pid); the hub must hold exactly one Started event with that pid from that node, and one ending
 * event (Exited, Stopped or Killed) for every such process that is gone, none for one that runs.
 * Events dropped by the outbox budget are allowed only as far as the node's droppedEvents says.
 */
export function checkEvents(snap: Snapshot, eventsByNode: Map<string, HubEventItem[]>, refusals: Map<string, Refusal[]> = new Map()): EventChecks {
  const dupDetails: string[] = [];
  const details: string[] = [];
  const reasons: Record<string, number> = {};
  let startsChecked = 0;
  const unwitnessed: string[] = [];
  for (const view of snap.agents) {
    const node = view.spec.name;
    const events = eventsByNode.get(node) ?? [];
    const seen = new Set<number>();
    for (const e of events) {
      reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
      if (seen.has(e.seq)) dupDetails.push(`${node}: seq ${e.seq} stored twice (${e.reason} ${e.object.name})`);
      seen.add(e.seq);
    }
    const dropped = snap.hub.nodes.find((n) => n.metadata.name === node)?.status?.droppedEvents ?? 0;
    let missingStarted = 0;
    const pidOf = (e: HubEventItem) => Number(/^(?:started )?pid (\d+)/.exec(e.message)?.[1] ?? NaN);
    const instances = new Set<string>([...snap.markers.values()].flat().filter((s) => s.node === node).map((s) => s.instance));
    for (const e of events) if (e.object.kind === 'Instance') instances.add(e.object.name);
    for (const inst of [...instances].sort()) {
      // Diagnosis for a missing event: did the hub refuse events about this instance from this node?
      const refused = (refusals.get(node) ?? []).filter((r) => r.reason.includes('events about') && r.reason.endsWith(` ${inst}`));
      const why = refused.length ? ` [the hub refused ${refused.length} event(s) about it from ${node}: ${refused[0]!.code} "${refused[0]!.reason}"]` : '';
      const starts = startsOn(snap.markers, inst, node);
      const mine = events.filter((e) => e.object.kind === 'Instance' && e.object.name === inst);
      const started = mine.filter((e) => e.reason === 'Started');
      const ends = mine.filter((e) => END_REASONS.has(e.reason));
      startsChecked += starts.length;
      const unwitnessedBefore = unwitnessed.length;
      for (const s of starts) {
        const n = started.filter((e) => pidOf(e) === s.pid).length;
        if (n === 0) missingStarted++;
        if (n !== 1 && !(n === 0 && dropped > 0)) details.push(`${node} ${inst}: pid ${s.pid} (${s.gen}) started once, the hub holds ${n} Started event(s) for it${n === 0 ? why : ''}`);
        const alive = snap.procs.some((p) => p.pid === s.pid && p.node === node && p.instance === inst);
        const endCount = ends.filter((e) => pidOf(e) === s.pid).length;
        const wantEnds = alive ? 0 : 1;
        if (endCount !== wantEnds && !(endCount === 0 && dropped > 0)) {
          details.push(`${node} ${inst}: pid ${s.pid} ${alive ? 'still runs' : 'has ended'}, the hub holds ${endCount} end event(s) for it (${ends.filter((e) => pidOf(e) === s.pid).map((e) => `${e.reason} seq ${e.seq}`).join(', ') || 'none'}), want ${wantEnds}${endCount < wantEnds ? why : ''}`);
        }
      }
      for (const e of started) {
        const pid = pidOf(e);
        if (starts.some((s) => s.pid === pid)) continue;
        // A process SIGTERMed by the agent before the shell ran its first command never writes
        // its line (the harness's witness has this one blind spot). Accepted only if the agent
        // then reported exactly that: the same pid stopped, once.
        const stopped = ends.filter((x) => pidOf(x) === pid);
        if (stopped.length === 1 && stopped[0]!.reason !== 'Exited') {
          unwitnessed.push(`${node} ${inst} pid ${pid}`);
          continue;
        }
        details.push(`${node} ${inst}: Started event seq ${e.seq} (${e.message}) for a process that never recorded a start`);
      }
      const witnessed = started.length - (unwitnessed.length - unwitnessedBefore);
      if (witnessed !== starts.length && !(witnessed < starts.length && dropped > 0)) {
        details.push(`${node} ${inst}: ${starts.length} process start(s) recorded, the hub holds ${witnessed} Started event(s) for them`);
      }
    }
    if (dropped > 0 && missingStarted > dropped) details.push(`${node}: ${missingStarted} Started events missing but only ${dropped} dropped by the outbox budget`);
  }
  const total = [...eventsByNode.values()].reduce((n, l) => n + l.length, 0);
  return {
    unique: { name: 'events stored once: (node, seq) unique at the hub', pass: dupDetails.length === 0, details: dupDetails.length ? dupDetails : [`${total} events`] },
    exactlyOnce: {
      name: 'reports exactly once: Started and end events match the recorded process starts',
      pass: details.length === 0,
      details: [
        ...(details.length ? details : [`${startsChecked} process starts matched one-to-one by pid`]),
        ...(unwitnessed.length ? [`note: ${unwitnessed.length} start(s) stopped before writing their line (Started + Stopped reported): ${unwitnessed.join(', ')}`] : []),
      ],
    },
    reasons,
  };
}

/** With every unit on the default policy ("never"), no node may show any phase but these. */
export function checkPhases(observer: Observer): CheckResult {
  const bad = observer.phases.filter((p) => !ALLOWED_PHASES.has(p.phase));
  const details = bad.map((p) => `${p.node} was ${p.phase} at ${new Date(p.at).toISOString()}`);
  const disconnects = observer.phases.filter((p) => p.phase === 'Disconnected').length;
  if (observer.gaps > 0) details.push(`note: the watch lost history ${observer.gaps} time(s) (410) and re-listed`);
  return { name: 'no node ever Down (units on policy "never")', pass: bad.length === 0, details: bad.length ? details : [`${observer.phases.length} phase changes watched, ${disconnects} to Disconnected, none outside Pending/Ready/Disconnected`, ...details] };
}

/** No instance was restarted without a cause (see accounting.ts). */
export function checkRestarts(snap: Snapshot, observer: Observer, crashes: CrashRecord[]): { result: CheckResult; accounts: InstanceAccount[] } {
  const accounts: InstanceAccount[] = [];
  const pairs = new Set<string>();
  for (const list of snap.markers.values()) for (const s of list) pairs.add(`${s.instance} ${s.node}`);
  for (const pair of [...pairs].sort()) {
    const [instance, node] = pair.split(' ') as [string, string];
    accounts.push(accountInstance(instance, node, startsOn(snap.markers, instance, node), observer.instanceHistory.get(instance) ?? [], crashes));
  }
  const details = accounts.flatMap((a) => a.unexplained.map((u) => `${a.node} ${a.instance}: ${u}`));
  const sum = (k: keyof InstanceAccount['causes']) => accounts.reduce((n, a) => n + a.causes[k], 0);
  const summary = `${accounts.reduce((n, a) => n + a.starts, 0)} starts = ${sum('first')} first + ${sum('template')} template + ${sum('crash')} crash + ${sum('recreation')} recreation (${crashes.length} crashes injected)`;
  if (observer.gaps > 0) details.push(`the instance watch lost history ${observer.gaps} time(s): arrivals may be undercounted`);
  return { result: { name: 'no instance restarted without cause (reconnects, agent or hub restarts)', pass: details.length === 0, details: [summary, ...details] }, accounts };
}

/** Exactly one process per placed instance, on its node; none for anything else; none unplaced. */
export function checkProcesses(snap: Snapshot, agents: AgentSpec[]): CheckResult {
  const details: string[] = [];
  const nodes = new Set(agents.map((a) => a.name));
  for (const inst of snap.hub.instances) {
    const name = inst.metadata.name;
    if (!inst.spec.node) {
      details.push(`${name}: not placed on any node after the heal`);
      continue;
    }
    if (!nodes.has(inst.spec.node)) details.push(`${name}: placed on unknown node ${inst.spec.node}`);
    const procs = snap.procs.filter((p) => p.instance === name);
    const here = procs.filter((p) => p.node === inst.spec.node);
    if (here.length !== 1) details.push(`${name}: ${here.length} processes on ${inst.spec.node} (${here.map((p) => p.pid).join(', ') || 'none'}), want 1`);
    const elsewhere = procs.filter((p) => p.node !== inst.spec.node);
    if (elsewhere.length) details.push(`${name}: processes left on other nodes: ${elsewhere.map((p) => `${p.node}/${p.pid}`).join(', ')}`);
  }
  const known = new Set(snap.hub.instances.map((i) => i.metadata.name));
  const orphans = snap.procs.filter((p) => !known.has(p.instance));
  if (orphans.length) details.push(`processes of deleted instances still run: ${orphans.map((p) => `${p.instance}@${p.node}/${p.pid}`).join(', ')}`);
  return { name: 'processes: one per placed instance, no duplicates, no orphans', pass: details.length === 0, details: details.length ? details : [`${snap.procs.length} instance processes, ${snap.hub.instances.length} instances`] };
}

export interface ConvergenceResult {
  /** Agent -> ms from the heal until it converged (and stayed so); absent if it never did. */
  perAgentMs: Record<string, number | null>;
  p50Ms: number | null;
  maxMs: number | null;
  check: CheckResult;
}

export function convergenceResult(perAgentMs: Record<string, number | null>, timeoutMs: number, last: Snapshot | undefined): ConvergenceResult {
  const times = Object.values(perAgentMs).filter((v): v is number => v !== null).sort((a, b) => a - b);
  const missing = Object.entries(perAgentMs).filter(([, v]) => v === null).map(([k]) => k);
  const details: string[] = [];
  for (const name of missing) {
    const view = last?.agents.find((a) => a.spec.name === name);
    const problems = last && view ? agentProblems(last, view) : ['no snapshot'];
    details.push(`${name}: not converged ${timeoutMs / 1000}s after the heal: ${problems.join('; ')}`);
  }
  const p50 = times.length ? times[Math.floor((times.length - 1) / 2)]! : null;
  const max = times.length ? times.at(-1)! : null;
  const summary = `p50 ${p50 ?? '-'} ms, max ${max ?? '-'} ms over ${times.length} agent(s)`;
  return { perAgentMs, p50Ms: p50, maxMs: max, check: { name: `convergence after the heal (within ${timeoutMs / 1000}s)`, pass: missing.length === 0, details: [summary, ...details] } };
}
