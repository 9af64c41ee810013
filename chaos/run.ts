import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { EdgeNode } from '../shared/api/index.js';
import { readRefusals } from './agent-logs.js';
import { API, HubClient } from './api.js';
import { checkDesiredState, checkEvents, checkOutbox, checkPhases, checkProcesses, checkRestarts, convergenceResult, type CheckResult } from './checks.js';
import { ChaosCluster, RUN_ENV, type AgentSpec } from './cluster.js';
import { FaultInjector, planFaults } from './faults.js';
import { Observer } from './observer.js';
import { killInstanceGroups, scanInstanceProcs, scanProcsWithEnv } from './procs.js';
import { faultCounts, type ChaosReport, type WorkloadLogEntry } from './report.js';
import { Rng } from './rng.js';
import { agentProblems, readEvents, readHub, takeSnapshot, type HubEventItem, type Snapshot } from './snapshot.js';
import { applyOp, describeOp, planWorkload, unitObject, type WorkloadContext } from './workload.js';

export interface ChaosOptions {
  /** Agent processes; default 6. */
  agents: number;
  /** Length of the fault phase, seconds; default 60. */
  durationS: number;
  seed: number;
  /** Node units the agents are spread over; default 3. */
  units: number;
  /** Keep the temp dir (data, logs, start records) even when the run passes. */
  keep: boolean;
  /** How long the cluster may take to converge after the heal, seconds; default 60. */
  convergeTimeoutS?: number;
  /** Progress lines (the fault log as it happens); default: none. */
  log?: (line: string) => void;
  /** Aborts the run (SIGINT): it stops injecting, cleans up and reports what it had. */
  signal?: AbortSignal;
}

/** The command that replays a run with these inputs. */
export function replayCommand(o: Pick<ChaosOptions, 'agents' | 'durationS' | 'seed' | 'units'>): string {
  return `npm run chaos -- --agents ${o.agents} --duration ${o.durationS} --units ${o.units} --seed ${o.seed}`;
}

/**
 * One chaos run: a real hub and N real agents behind fault proxies, a seeded plan of faults and
 * desired-state changes for `durationS`, then the heal, convergence and the checks. Every process
 * of the run (hub, agents, instances) is killed before this returns, whatever happened.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const rng = new Rng(options.seed);
  const runId = `chaos-${options.seed}-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'outpost-chaos-'));
  const markerDir = join(dir, 'markers');
  mkdirSync(markerDir, { recursive: true });
  const durationMs = options.durationS * 1000;
  const agents: AgentSpec[] = Array.from({ length: options.agents }, (_, i) => ({ name: `edge-${i}`, unit: `unit-${i % options.units}` }));
  const workloadPlan = planWorkload(rng.fork('workload'), { durationMs, units: options.units });
  const faultPlan = planFaults(rng.fork('faults'), { durationMs, agents });
  const ctx: WorkloadContext = { runId, markerDir };
  const cluster = new ChaosCluster({ dir, runId, agents });
  const injector = new FaultInjector({ cluster, agents, runId, markerDir, crashRng: rng.fork('crash-targets'), log });
  const report: ChaosReport = {
    inputs: { seed: options.seed, agents: options.agents, durationS: options.durationS, units: options.units, replay: replayCommand(options) },
    runId,
    startedAt: new Date(started).toISOString(),
    node: process.version,
    tempDir: dir,
    tempDirKept: false,
    pass: false,
    violations: [],
    timings: {},
    faults: { counts: faultCounts([]), log: injector.records, crashes: injector.crashes },
    workload: { counts: {}, log: [] },
    observed: {},
    checks: [],
    accounts: [],
  };
  let observer: Observer | undefined;
  const abortCheck = () => {
    if (options.signal?.aborted) throw new Error('aborted');
  };

  try {
    log(`seed ${options.seed}; run ${runId}; data in ${dir}`);
    await cluster.init();
    const api = new HubClient(cluster.hubUrl, cluster.adminToken);
    observer = new Observer(cluster.hubUrl, cluster.adminToken);
    observer.start();
    for (const u of workloadPlan.units) await api.retry('PUT', `${API}/nodeunits/${u.name}`, unitObject(u), { deadlineMs: 15_000 });
    await Promise.all(agents.map(async (a) => {
      const t = await api.retry<{ token: string }>('POST', `${API}/jointokens`, { unit: a.unit, uses: 1, ttl: '1h' }, { deadlineMs: 15_000 });
      await cluster.startAgent(a.name, t.token);
    }));
    await waitFor(async () => (await readHub(api)).nodes.filter((n: EdgeNode) => n.status?.phase === 'Ready').length === agents.length, 60_000, 'every agent joined and Ready');
    for (const op of workloadPlan.initial) await applyOp(api, op, ctx, 15_000);
    const setup = await converge({ api, cluster, agents, runId, markerDir }, Date.now(), 90_000, options.signal);
    if (Object.values(setup.perAgentMs).some((v) => v === null)) {
      const details = convergenceResult(setup.perAgentMs, 90_000, setup.last).check.details.slice(1);
      throw new Error(`the cluster did not converge before the faults began: ${details.join(' | ')}`);
    }
    report.timings.setupMs = Date.now() - started;
    abortCheck();

    // The fault phase: faults and desired-state changes run side by side, each on its own plan.
    const chaosStart = Date.now();
    report.timings.chaosStartedAt = new Date(chaosStart).toISOString();
    log(`chaos phase: ${faultPlan.length} faults and ${workloadPlan.timeline.length} desired-state changes planned over ${options.durationS}s`);
    injector.start(faultPlan, chaosStart);
    const workload = runWorkload(api, workloadPlan.timeline, ctx, chaosStart, report.workload.log, log, options.signal);
    await sleepUntil(chaosStart + durationMs, options.signal);
    await injector.stop();
    report.timings.chaosMs = Date.now() - chaosStart;

    // Heal, let pending desired-state changes land, then wait for convergence.
    const healStart = Date.now();
    log('heal: restoring every link, continuing every process, starting what is down');
    await injector.heal();
    report.timings.healMs = Date.now() - healStart;
    await workload;
    const timeoutMs = (options.convergeTimeoutS ?? 60) * 1000;
    const conv = await converge({ api, cluster, agents, runId, markerDir }, healStart, timeoutMs, options.signal);
    const convergence = convergenceResult(conv.perAgentMs, timeoutMs, conv.last);
    report.timings.convergence = { perAgentMs: convergence.perAgentMs, p50Ms: convergence.p50Ms, maxMs: convergence.maxMs };
    log(`converged: p50 ${convergence.p50Ms ?? '-'} ms, max ${convergence.maxMs ?? '-'} ms`);

    // A second look a moment later: what converged must stay converged.
    await delay(1000);
    const final = await takeSnapshot({ api, cluster, agents, runId, markerDir });
    const eventsByNode = await fetchEvents(api, final);
    await observer.stop();
    const refusals = new Map(agents.map((a) => [a.name, readRefusals(cluster.logFile(a.name))]));
    const events = checkEvents(final, eventsByNode, refusals);
    const restarts = checkRestarts(final, observer, injector.crashes);
    report.accounts = restarts.accounts;
    report.checks = [
      convergence.check,
      checkDesiredState(final),
      checkOutbox(final),
      events.unique,
      events.exactlyOnce,
      checkPhases(observer),
      restarts.result,
      checkProcesses(final, agents),
    ];
    report.observed = {
      phaseChanges: observer.phases.length,
      disconnects: observer.phases.filter((p) => p.phase === 'Disconnected').length,
      watchReconnects: observer.reconnects,
      eventsByReason: events.reasons,
      proxies: Object.fromEntries([...cluster.proxies].map(([k, p]) => [k, { ...p.stats }])),
    };
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
    report.checks.push({ name: 'run completed', pass: false, details: [report.error] });
  } finally {
    await observer?.stop();
    await injector.stop();
    await cluster.shutdown();
    const leftovers = await cleanupProcesses(runId);
    if (leftovers.length) report.checks.push({ name: 'cleanup', pass: false, details: leftovers });
    report.faults.counts = faultCounts(injector.records);
    for (const e of report.workload.log) if (e.doneAtMs !== undefined) report.workload.counts[e.kind] = (report.workload.counts[e.kind] ?? 0) + 1;
    report.violations = report.checks.filter((c) => !c.pass).flatMap((c) => c.details.map((d) => `${c.name}: ${d}`));
    report.pass = report.checks.length > 0 && report.checks.every((c) => c.pass);
    report.timings.totalMs = Date.now() - started;
    // A failed run keeps its data and logs: they are what the replay is compared with.
    report.tempDirKept = options.keep || !report.pass;
    if (!report.tempDirKept) rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

interface ConvergeDeps {
  api: HubClient;
  cluster: ChaosCluster;
  agents: AgentSpec[];
  runId: string;
  markerDir: string;
}

/**
 * Polls until every agent has converged in one snapshot (see agentProblems) or the timeout.
 * An agent's time is from `from` to the moment it converged and stayed converged.
 */
async function converge(deps: ConvergeDeps, from: number, timeoutMs: number, signal?: AbortSignal): Promise<{ perAgentMs: Record<string, number | null>; last: Snapshot | undefined }> {
  const since = new Map<string, number | null>(deps.agents.map((a) => [a.name, null]));
  let last: Snapshot | undefined;
  const deadline = from + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw new Error('aborted');
    try {
      const snap = await takeSnapshot(deps);
      last = snap;
      for (const view of snap.agents) {
        const ok = agentProblems(snap, view).length === 0;
        const cur = since.get(view.spec.name) ?? null;
        if (ok && cur === null) since.set(view.spec.name, snap.at);
        if (!ok) since.set(view.spec.name, null);
      }
      if ([...since.values()].every((v) => v !== null)) break;
    } catch {
      // the hub did not answer in time: poll again
    }
    if (Date.now() >= deadline) break;
    await delay(400);
  }
  return { perAgentMs: Object.fromEntries([...since].map(([k, v]) => [k, v === null ? null : Math.max(0, v - from)])), last };
}

/** Applies the planned desired-state changes in order, each at its time (or as soon as the previous one landed). */
async function runWorkload(api: HubClient, timeline: ReturnType<typeof planWorkload>['timeline'], ctx: WorkloadContext, t0: number, out: WorkloadLogEntry[], log: (line: string) => void, signal?: AbortSignal): Promise<void> {
  for (const { at, op } of timeline) {
    if (signal?.aborted) return;
    await sleepUntil(t0 + at, signal).catch(() => undefined);
    if (signal?.aborted) return;
    const entry: WorkloadLogEntry = { plannedAtMs: at, op: describeOp(op), kind: op.kind };
    out.push(entry);
    try {
      // Long enough to outlast any hub outage of the plan; the heal restarts a hub that is down.
      await applyOp(api, op, ctx, 60_000);
      entry.doneAtMs = Date.now() - t0;
      log(`+${(entry.doneAtMs / 1000).toFixed(1)}s apply ${entry.op}`);
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
      log(`apply ${entry.op} failed: ${entry.error}`);
    }
  }
}

/** Every node's events; per instance when a node holds more than one page. */
async function fetchEvents(api: HubClient, snap: Snapshot): Promise<Map<string, HubEventItem[]>> {
  const out = new Map<string, HubEventItem[]>();
  for (const a of snap.agents) {
    let items = await readEvents(api, a.spec.name);
    if (items.length >= 5000) {
      const names = new Set([...snap.markers.values()].flat().filter((s) => s.node === a.spec.name).map((s) => s.instance));
      items = [];
      for (const n of names) items.push(...(await readEvents(api, a.spec.name, n)));
    }
    out.set(a.spec.name, items);
  }
  return out;
}

/** Kills every process of the run still alive; returns what survived (should be nothing). */
async function cleanupProcesses(runId: string): Promise<string[]> {
  for (let i = 0; i < 3; i++) {
    killInstanceGroups(runId);
    for (const p of scanProcsWithEnv(RUN_ENV, runId)) {
      try {
        process.kill(-p.pgrp, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await delay(200);
    if (scanInstanceProcs(runId).length === 0 && scanProcsWithEnv(RUN_ENV, runId).length === 0) return [];
  }
  return [
    ...scanInstanceProcs(runId).map((p) => `instance process ${p.pid} (${p.instance}) survived the cleanup`),
    ...scanProcsWithEnv(RUN_ENV, runId).map((p) => `process ${p.pid} of the run survived the cleanup`),
  ];
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(200);
  }
}

async function sleepUntil(at: number, signal?: AbortSignal): Promise<void> {
  const ms = at - Date.now();
  if (ms > 0) await delay(ms, undefined, signal ? { signal } : {});
}

export type { CheckResult };
