// The registry chaos scenario (issue 6): N agents of one unit replicate their registries while
// agents and the hub are SIGKILLed and SIGSTOPped; workers register, update and deregister over
// HTTP and SSE subscribers watch every service on every agent. After the heal the run checks,
// against a model built from acknowledged operations only: nothing acknowledged lost, nothing
// deregistered back, subscribers' versions only grow, no empty or partial list, and every node
// converging within the limit (p50 and max reported).
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { API, HubClient } from '../api.js';
import type { CheckResult } from '../checks.js';
import { ChaosCluster, type AgentSpec } from '../cluster.js';
import { Rng } from '../rng.js';
import { readViews, runSubscriber, runWorker, SERVICES, type OpCounts } from './registry-load.js';
import { checkConvergence, checkFinalViews, checkSubscribers, RegistryModel, type SeenInstance, type Subscriber } from './registry-model.js';

export interface RegistryChaosOptions {
  /** Agents of the one unit; default 3. */
  agents: number;
  /** Seconds of faults and operations before the heal. */
  durationS: number;
  seed: number;
  keep: boolean;
  /** Every node must converge within this many seconds of the heal; default 10. */
  convergeLimitS?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface RegistryChaosReport {
  scenario: 'registry';
  inputs: { seed: number; agents: number; durationS: number; replay: string };
  runId: string;
  tempDir: string;
  tempDirKept: boolean;
  pass: boolean;
  checks: CheckResult[];
  convergence: { perAgentMs: Record<string, number | null>; p50Ms: number | null; maxMs: number | null };
  operations: Record<string, OpCounts>;
  model: { live: number; deleted: number; uncertain: number };
  subscribers: { connections: number; events: number };
  faults: string[];
  timings: Record<string, number>;
  error?: string;
}

export function registryReplay(o: Pick<RegistryChaosOptions, 'agents' | 'durationS' | 'seed'>): string {
  return `npm run chaos -- --mode registry --agents ${o.agents} --duration ${o.durationS} --seed ${o.seed}`;
}

const UNIT = 'site';

export async function runRegistryChaos(options: RegistryChaosOptions): Promise<RegistryChaosReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const rng = new Rng(options.seed);
  const runId = `chaos-registry-${options.seed}-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'outpost-chaos-registry-'));
  const agents: AgentSpec[] = Array.from({ length: options.agents }, (_, i) => ({ name: `reg-${i}`, unit: UNIT }));
  const names = agents.map((a) => a.name);
  const cluster = new ChaosCluster({ dir, runId, agents, agentArgs: ['--dns-listen', 'none'] });
  const model = new RegistryModel();
  const subscribers: Subscriber[] = agents.flatMap((a) => SERVICES.map((service) => ({ agent: a.name, service, connections: [] })));
  const limitMs = (options.convergeLimitS ?? 10) * 1000;
  const report: RegistryChaosReport = {
    scenario: 'registry',
    inputs: { seed: options.seed, agents: options.agents, durationS: options.durationS, replay: registryReplay(options) },
    runId, tempDir: dir, tempDirKept: false, pass: false, checks: [],
    convergence: { perAgentMs: {}, p50Ms: null, maxMs: null },
    operations: {}, model: { live: 0, deleted: 0, uncertain: 0 }, subscribers: { connections: 0, events: 0 }, faults: [], timings: {},
  };
  const load = new AbortController();
  const watching = new AbortController();
  setMaxListeners(100, load.signal, watching.signal); // one listener per worker and subscriber
  const stopAll = () => { load.abort(); watching.abort(); };
  options.signal?.addEventListener('abort', stopAll, { once: true });
  let workers: Promise<OpCounts>[] = [];
  let watchers: Promise<void>[] = [];
  try {
    log(`seed ${options.seed}; ${options.agents} agents in unit ${UNIT}; data in ${dir}`);
    await cluster.init();
    const api = new HubClient(cluster.hubUrl, cluster.adminToken);
    await api.retry('PUT', `${API}/nodeunits/${UNIT}`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: UNIT }, spec: {} }, { deadlineMs: 15_000 });
    await Promise.all(agents.map(async (a) => {
      const t = await api.retry<{ token: string }>('POST', `${API}/jointokens`, { unit: UNIT, uses: 1, ttl: '1h' }, { deadlineMs: 15_000 });
      await cluster.startAgent(a.name, t.token);
    }));
    // The peers found each other when a registration on each agent is visible on every agent.
    await Promise.all(names.map(async (agent) => {
      const res = await fetch(`${cluster.localApi(agent)}/v1/registry/services/db/instances/seed-${agent}`, { method: 'PUT', body: JSON.stringify({ address: '10.9.0.1', port: 1, ttl: '1h' }), signal: AbortSignal.timeout(10_000) });
      if (res.status !== 200) throw new Error(`seed registration on ${agent}: HTTP ${res.status}`);
      model.register(agent, 'db', `seed-${agent}`, 1, true, Date.now());
    }));
    const meshed = await pollUntil(async () => {
      const views = await readViews(cluster, names);
      return names.every((a) => names.every((b) => views.get(a)?.has(`db/seed-${b}`)));
    }, 60_000, options.signal);
    if (!meshed) throw new Error('the agents did not replicate to each other within 60 s of the start');
    report.timings.setupMs = Date.now() - started;

    const chaosStart = Date.now();
    watchers = subscribers.map((subscriber) => runSubscriber({ cluster, subscriber }, watching.signal));
    workers = names.map((agent) => runWorker({ cluster, model, rng: rng.fork(`worker-${agent}`), agent }, load.signal));
    log(`chaos phase: ${options.durationS}s of kills and pauses with ${names.length} workers and ${subscribers.length} subscribers`);
    const faultRng = rng.fork('faults');
    while (Date.now() < chaosStart + options.durationS * 1000 && !options.signal?.aborted) {
      await delay(faultRng.int(500, 2_000));
      const roll = faultRng.float();
      const downMs = faultRng.int(1_000, 4_000);
      const at = ((Date.now() - chaosStart) / 1000).toFixed(1);
      if (roll < 0.7) {
        const agent = faultRng.pick(names);
        const kill = roll < 0.35;
        report.faults.push(`${at}s ${kill ? 'SIGKILL' : 'SIGSTOP'} ${agent} for ${downMs} ms`);
        log(report.faults.at(-1)!);
        if (kill) await cluster.killAgent(agent);
        else cluster.pauseAgent(agent, true);
        await delay(downMs);
        if (kill) await cluster.startAgent(agent);
        else cluster.pauseAgent(agent, false);
      } else {
        const kill = roll < 0.85;
        report.faults.push(`${at}s ${kill ? 'SIGKILL' : 'SIGSTOP'} hub for ${downMs} ms`);
        log(report.faults.at(-1)!);
        if (kill) await cluster.killHub();
        else cluster.pauseHub(true);
        await delay(downMs);
        if (kill) await cluster.startHub();
        else cluster.pauseHub(false);
      }
    }
    load.abort();
    const counts = await Promise.all(workers);
    names.forEach((n, i) => { report.operations[n] = counts[i]!; });
    report.timings.chaosMs = Date.now() - chaosStart;

    // Heal: whatever is down comes back (the loop above already restores each fault).
    const healAt = Date.now();
    if (cluster.hubState() === 'dead') await cluster.startHub();
    if (cluster.hubState() === 'paused') cluster.pauseHub(false);
    for (const a of names) {
      if (cluster.agentState(a) === 'dead') await cluster.startAgent(a);
      if (cluster.agentState(a) === 'paused') cluster.pauseAgent(a, false);
    }
    log('heal: every process runs; waiting for the agents to agree');
    const conv = await converge(cluster, names, healAt, Math.max(30_000, limitMs * 3), options.signal);
    const convergence = checkConvergence(conv.perAgentMs, limitMs);
    report.convergence = { perAgentMs: conv.perAgentMs, p50Ms: convergence.p50Ms, maxMs: convergence.maxMs };
    log(`converged: p50 ${convergence.p50Ms ?? '-'} ms, max ${convergence.maxMs ?? '-'} ms`);
    await delay(1_000); // the subscribers' last snapshots
    watching.abort();
    await Promise.all(watchers);
    const views = new Map<string, Map<string, SeenInstance>>();
    for (const [agent, view] of await readViews(cluster, names)) views.set(agent, view ?? new Map());
    report.checks = [convergence.check, ...checkFinalViews(model, views), ...checkSubscribers(model, subscribers)];
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
    report.checks.push({ name: 'run completed', pass: false, details: [report.error] });
  } finally {
    stopAll();
    await Promise.allSettled([...workers, ...watchers]);
    options.signal?.removeEventListener('abort', stopAll);
    await cluster.shutdown();
    for (const e of model.entries.values()) report.model[e.state === 'live' ? 'live' : e.state === 'deleted' ? 'deleted' : 'uncertain']++;
    report.subscribers = { connections: subscribers.reduce((n, s) => n + s.connections.length, 0), events: subscribers.reduce((n, s) => n + s.connections.reduce((m, c) => m + c.events.length, 0), 0) };
    report.pass = report.checks.length > 0 && report.checks.every((c) => c.pass);
    report.timings.totalMs = Date.now() - started;
    report.tempDirKept = options.keep || !report.pass;
    if (!report.tempDirKept) rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

/** A fingerprint of one agent's whole answer: key, port, health and version of every instance. */
function fingerprint(view: Map<string, SeenInstance>): string {
  return [...view.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}:${v.port}:${v.health}:${v.version?.incarnation ?? '?'}.${v.version?.counter ?? '?'}`).join(',');
}

/**
 * Polls every agent until all give the same answer, with every instance passing, for 1 s in a
 * row. An agent's time is from the heal to the first poll from which on it gave that answer.
 */
async function converge(cluster: ChaosCluster, names: string[], healAt: number, timeoutMs: number, signal?: AbortSignal): Promise<{ perAgentMs: Record<string, number | null> }> {
  const polls: Array<{ at: number; fps: Map<string, string | undefined> }> = [];
  let agreedSince: number | undefined;
  while (Date.now() < healAt + timeoutMs && !signal?.aborted) {
    const views = await readViews(cluster, names);
    const fps = new Map(names.map((n) => { const v = views.get(n); return [n, v ? fingerprint(v) : undefined] as const; }));
    polls.push({ at: Date.now(), fps });
    const first = fps.get(names[0]!);
    const allPassing = [...views.values()].every((v) => v !== undefined && [...v.values()].every((i) => i.health === 'passing'));
    const agree = first !== undefined && allPassing && names.every((n) => fps.get(n) === first);
    agreedSince = agree ? (agreedSince ?? Date.now()) : undefined;
    if (agreedSince !== undefined && Date.now() - agreedSince >= 1_000) break;
    await delay(200);
  }
  const perAgentMs: Record<string, number | null> = {};
  const final = agreedSince === undefined ? undefined : polls.at(-1)?.fps.get(names[0]!);
  for (const n of names) {
    if (final === undefined) { perAgentMs[n] = null; continue; }
    let since: number | null = null;
    for (const p of polls) since = p.fps.get(n) === final ? (since ?? p.at) : null;
    perAgentMs[n] = since === null ? null : Math.max(0, since - healAt);
  }
  return { perAgentMs };
}

async function pollUntil(check: () => Promise<boolean>, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal?.aborted) {
    if (await check().catch(() => false)) return true;
    await delay(250);
  }
  return false;
}

export function formatRegistryReport(r: RegistryChaosReport): string {
  const lines = [`registry chaos: ${r.pass ? 'PASS' : 'FAIL'} (seed ${r.inputs.seed}, ${r.inputs.agents} agents, ${r.inputs.durationS}s)`];
  for (const c of r.checks) {
    lines.push(`  ${c.pass ? 'PASS' : 'FAIL'} ${c.name}`);
    for (const d of c.details.slice(0, c.pass ? 1 : 10)) lines.push(`       ${d}`);
  }
  const ops = Object.values(r.operations).reduce((a, o) => ({ acked: a.acked + o.acked, unacked: a.unacked + o.unacked, refused: a.refused + o.refused }), { acked: 0, unacked: 0, refused: 0 });
  lines.push(`  operations: ${ops.acked} acknowledged, ${ops.unacked} unanswered, ${ops.refused} refused; model: ${r.model.live} live, ${r.model.deleted} deleted, ${r.model.uncertain} uncertain`);
  lines.push(`  subscribers: ${r.subscribers.connections} connections, ${r.subscribers.events} events; faults: ${r.faults.length}`);
  lines.push(`  convergence after the heal: p50 ${r.convergence.p50Ms ?? '-'} ms, max ${r.convergence.maxMs ?? '-'} ms`);
  if (!r.pass) lines.push(`  replay: ${r.inputs.replay}`, `  data kept in ${r.tempDir}`);
  return lines.join('\n');
}
