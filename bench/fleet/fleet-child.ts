// One fleet process: many simulated agents (bench/fleet/sim-agent.ts), driven over IPC by a
// scenario. Started by bench/fleet/fleet.ts; never part of the hub's process.
import { joinHub } from '../../edge-agent/link/join.js';
import { silentLogger } from '../../shared/logger.js';
import type { SyncFrame } from '../../shared/protocol/frames.js';
import type { FleetNode, FleetReply, FleetRequest, FleetStats, JoinResult, WatchResult, WatchSpec } from './protocol.js';
import { SimAgent } from './sim-agent.js';

const log = silentLogger();
const agents = new Map<string, SimAgent>();
const watches = new Map<string, { spec: WatchSpec; times: Map<string, number> }>();
let mark = { at: Date.now(), resynced: new Map<string, number>(), connected: new Map<string, number>() };

const watchKey = (w: WatchSpec) => `${w.kind}/${w.name}@${w.generation}`;

function committed(agent: SimAgent, frame: SyncFrame, at: number): void {
  if (watches.size === 0) return;
  for (const o of frame.objects) {
    for (const w of watches.values()) {
      if (o.kind === w.spec.kind && o.metadata.name === w.spec.name && (o.metadata.generation ?? 0) >= w.spec.generation && !w.times.has(agent.name)) {
        w.times.set(agent.name, at);
      }
    }
  }
}

async function join(hubUrl: string, nodes: FleetNode[], concurrency: number): Promise<JoinResult> {
  const result: JoinResult = { credentials: {}, failures: [], joinMs: [] };
  let next = 0;
  const worker = async () => {
    while (next < nodes.length) {
      const node = nodes[next++]!;
      const started = performance.now();
      try {
        const cred = await joinHub(node.hubUrl ?? hubUrl, node.token ?? '', node.name, {});
        result.credentials[node.name] = cred.credential;
        result.joinMs.push(performance.now() - started);
      } catch (err) {
        result.failures.push({ name: node.name, error: (err as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return result;
}

async function joinAndStart(hubUrl: string, nodes: FleetNode[], ratePerSecond: number): Promise<JoinResult> {
  const result: JoinResult = { credentials: {}, failures: [], joinMs: [] };
  const started = Date.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const wait = started + (i / ratePerSecond) * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const node = nodes[i]!;
    const t0 = performance.now();
    pending.push(joinHub(node.hubUrl ?? hubUrl, node.token ?? '', node.name, {}).then(
      (cred) => {
        result.joinMs.push(performance.now() - t0);
        result.credentials[node.name] = cred.credential;
        const agent = new SimAgent(node.name, cred.credential, node.hubUrl ?? hubUrl, log, agentEvents);
        agents.set(node.name, agent);
        agent.start();
      },
      (err: unknown) => { result.failures.push({ name: node.name, error: (err as Error).message }); },
    ));
  }
  await Promise.all(pending);
  return result;
}

const agentEvents = {
  onCommitted: committed,
  onResynced: (a: SimAgent, at: number) => { if (!mark.resynced.has(a.name)) mark.resynced.set(a.name, at); },
  onLinkState: (a: SimAgent, s: { connected: boolean }) => { if (s.connected && !mark.connected.has(a.name)) mark.connected.set(a.name, Date.now()); },
};

/** Creates the agents and dials at most `ratePerSecond` of them per second (0: all at once). */
async function start(hubUrl: string, nodes: FleetNode[], ratePerSecond: number): Promise<number> {
  const events = agentEvents;
  const started = Date.now();
  let i = 0;
  for (const n of nodes) {
    if (!n.credential) throw new Error(`node ${n.name} has no credential: join it first`);
    const agent = new SimAgent(n.name, n.credential, n.hubUrl ?? hubUrl, log, events);
    agents.set(n.name, agent);
    agent.start();
    i++;
    if (ratePerSecond > 0) {
      const due = started + (i / ratePerSecond) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    } else if (i % 200 === 0) {
      await new Promise((r) => setImmediate(r));
    }
  }
  return agents.size;
}

function stats(): FleetStats {
  const lastErrors: Record<string, number> = {};
  const disconnectReasons: Record<string, number> = {};
  let connected = 0;
  let disconnects = 0;
  let sessions = 0;
  for (const a of agents.values()) {
    if (a.connected) connected++;
    else {
      const state = a.link.state;
      const err = (!state.connected && state.lastError ? state.lastError : 'not connected yet').replace(/\d+/g, 'N').slice(0, 120);
      lastErrors[err] = (lastErrors[err] ?? 0) + 1;
    }
    disconnects += a.disconnects;
    for (const r of a.disconnectReasons) {
      const k = r.replace(/\d+/g, 'N').slice(0, 120);
      disconnectReasons[k] = (disconnectReasons[k] ?? 0) + 1;
    }
    sessions += a.sessions;
  }
  return {
    agents: agents.size, connected, disconnects, disconnectReasons, sessions, lastErrors, rssBytes: process.memoryUsage.rss(),
    sinceMark: { at: mark.at, resynced: mark.resynced.size, resyncTimes: [...mark.resynced.values()], connectTimes: [...mark.connected.values()] },
  };
}

async function handle(req: FleetRequest): Promise<unknown> {
  switch (req.type) {
    case 'join':
      return join(req.hubUrl, req.nodes, req.concurrency);
    case 'start':
      return start(req.hubUrl, req.nodes, req.ratePerSecond);
    case 'join-start':
      return joinAndStart(req.hubUrl, req.nodes, req.ratePerSecond);
    case 'watch':
      watches.set(watchKey(req.watch), { spec: req.watch, times: new Map() });
      return true;
    case 'watch-result': {
      const w = watches.get(watchKey(req.watch));
      const times = w ? [...w.times.values()] : [];
      const result: WatchResult = { times, missing: [...agents.keys()].filter((n) => !w?.times.has(n)) };
      return result;
    }
    case 'mark':
      mark = { at: Date.now(), resynced: new Map(), connected: new Map() };
      return mark.at;
    case 'stats':
      return stats();
    case 'stop':
      await Promise.all([...agents.values()].map((a) => a.stop()));
      setImmediate(() => process.exit(0));
      return true;
  }
}

process.on('message', (msg: { id: number; req: FleetRequest }) => {
  handle(msg.req).then(
    (value) => process.send?.({ id: msg.id, ok: true, value } satisfies FleetReply),
    (err: unknown) => process.send?.({ id: msg.id, ok: false, error: (err as Error).message } satisfies FleetReply),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, ok: true, value: 'ready' } satisfies FleetReply);
