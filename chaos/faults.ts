import type { AgentSpec, ChaosCluster } from './cluster.js';
import { readMarkers } from './markers.js';
import { scanInstanceProcs } from './procs.js';
import type { Rng } from './rng.js';

export const FAULT_KINDS = ['agent-kill', 'agent-pause', 'hub-kill', 'hub-pause', 'link-cut', 'link-blackhole', 'unit-partition', 'instance-crash'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One fault of the plan: what, on which target, when (ms after the chaos phase began), how long. */
export interface PlannedFault {
  at: number;
  kind: FaultKind;
  /** Agent name, unit name, 'hub', or 'random-instance'. */
  target: string;
  /** 0 for instantaneous faults (instance-crash). */
  durationMs: number;
  /** unit-partition: how the unit's links fail. */
  mode?: 'cut' | 'blackhole';
}

export interface FaultPlanOptions {
  durationMs: number;
  agents: AgentSpec[];
}

/**
 * Decides the faults of a run up front from the seed. Targets are reserved while their fault
 * lasts (plus time to come back), so that two faults never fight over one process or link; a
 * draw with no free target is skipped, which keeps the plan a pure function of the seed.
 * Pauses and outages are bounded (1-6 s of SIGSTOP, up to 10 s of partition). Faults may outlast
 * the phase: the heal ends them, so the convergence time measures a real recovery.
 */
export function planFaults(rng: Rng, options: FaultPlanOptions): PlannedFault[] {
  const busy = new Map<string, number>();
  const free = (key: string, t: number) => (busy.get(key) ?? -1) <= t;
  const units = [...new Set(options.agents.map((a) => a.unit))].sort();
  const plan: PlannedFault[] = [];
  for (let t = rng.int(500, 1500); t < options.durationMs - 300; t += rng.int(300, 1100)) {
    const kind = rng.weighted<FaultKind>([
      ['agent-kill', 3], ['agent-pause', 2], ['hub-kill', 1], ['hub-pause', 1],
      ['link-cut', 2], ['link-blackhole', 2], ['unit-partition', 1], ['instance-crash', 3],
    ]);
    const freeAgents = (prefix: string) => options.agents.filter((a) => free(`${prefix}:${a.name}`, t)).map((a) => a.name);
    switch (kind) {
      case 'agent-kill':
      case 'agent-pause': {
        const candidates = freeAgents('agent');
        if (candidates.length === 0) break;
        const target = rng.pick(candidates);
        const d = kind === 'agent-kill' ? rng.int(300, 4000) : rng.int(1000, 6000);
        busy.set(`agent:${target}`, t + d + (kind === 'agent-kill' ? 3000 : 500));
        plan.push({ at: t, kind, target, durationMs: d });
        break;
      }
      case 'hub-kill':
      case 'hub-pause': {
        if (!free('hub', t)) break;
        const d = kind === 'hub-kill' ? rng.int(500, 4000) : rng.int(1000, 6000);
        // A restarted hub needs a moment, and back-to-back hub faults would leave agents no
        // session at all: keep them apart.
        busy.set('hub', t + d + (kind === 'hub-kill' ? 6000 : 3000));
        plan.push({ at: t, kind, target: 'hub', durationMs: d });
        break;
      }
      case 'link-cut':
      case 'link-blackhole': {
        const candidates = freeAgents('link');
        if (candidates.length === 0) break;
        const target = rng.pick(candidates);
        const d = kind === 'link-cut' ? rng.int(1000, 8000) : rng.int(2000, 8000);
        busy.set(`link:${target}`, t + d + 500);
        plan.push({ at: t, kind, target, durationMs: d });
        break;
      }
      case 'unit-partition': {
        const candidates = units.filter((u) => options.agents.filter((a) => a.unit === u).every((a) => free(`link:${a.name}`, t)));
        if (candidates.length === 0) break;
        const unit = rng.pick(candidates);
        const mode = rng.pick(['cut', 'blackhole'] as const);
        const d = rng.int(3000, 10_000);
        for (const a of options.agents) if (a.unit === unit) busy.set(`link:${a.name}`, t + d + 500);
        plan.push({ at: t, kind, target: unit, durationMs: d, mode });
        break;
      }
      case 'instance-crash':
        plan.push({ at: t, kind, target: 'random-instance', durationMs: 0 });
        break;
    }
  }
  return plan;
}

/** What happened to a planned fault. */
export interface FaultRecord {
  kind: FaultKind;
  target: string;
  mode?: 'cut' | 'blackhole';
  plannedAtMs: number;
  plannedDurationMs: number;
  /** ms after the chaos phase began; absent when skipped. */
  startedAtMs?: number;
  endedAtMs?: number;
  outcome: 'pending' | 'active' | 'done' | 'skipped' | 'failed';
  note?: string;
}

/** An instance process the harness SIGKILLed. */
export interface CrashRecord {
  atMs: number;
  pid: number;
  instance: string;
  node: string;
  gen: string;
}

export interface FaultInjectorDeps {
  cluster: ChaosCluster;
  agents: AgentSpec[];
  runId: string;
  markerDir: string;
  /** Chooses crash victims among the processes that run at that moment. */
  crashRng: Rng;
  log: (line: string) => void;
}

export interface FaultInjectorOptions {
  /**
   * At most this many crashes per instance on one node. Every crash doubles the agent's restart
   * back-off (1 s, 2 s, 4 s...), so more would leave restarts pending long after the heal.
   * Default 3.
   */
  maxCrashesPerInstance?: number;
}

/**
 * Carries out a fault plan against the real processes. Actions on one target (a process or a
 * link) run one after another; actions on different targets run concurrently. Everything that
 * happens is logged with timestamps (`records`, `crashes`).
 */
export class FaultInjector {
  readonly records: FaultRecord[] = [];
  readonly crashes: CrashRecord[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly chains = new Map<string, Promise<void>>();
  private t0 = 0;

  constructor(private readonly deps: FaultInjectorDeps, private readonly options: FaultInjectorOptions = {}) {}

  private now(): number {
    return Date.now() - this.t0;
  }

  /** Schedules every fault of `plan` relative to `t0` (Date.now() when the chaos phase began). */
  start(plan: PlannedFault[], t0: number): void {
    this.t0 = t0;
    for (const f of plan) {
      const rec: FaultRecord = { kind: f.kind, target: f.target, ...(f.mode ? { mode: f.mode } : {}), plannedAtMs: f.at, plannedDurationMs: f.durationMs, outcome: 'pending' };
      this.records.push(rec);
      this.at(f.at, () => this.begin(f, rec));
      if (f.durationMs > 0) this.at(f.at + f.durationMs, () => this.end(f, rec));
    }
  }

  /** Cancels what has not fired yet and waits for actions in progress. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.chains.values()]);
  }

  /**
   * Ends every fault: all links restored, every process continued, a dead hub or agent started.
   * Returns when all run again.
   */
  async heal(): Promise<void> {
    const { cluster } = this.deps;
    for (const p of cluster.proxies.values()) p.restore();
    cluster.pauseHub(false);
    for (const a of this.deps.agents) cluster.pauseAgent(a.name, false);
    if (cluster.hubState() === 'dead') await cluster.startHub();
    await Promise.all(this.deps.agents.filter((a) => cluster.agentState(a.name) === 'dead').map((a) => cluster.startAgent(a.name)));
    for (const r of this.records) {
      if (r.outcome === 'active') {
        r.outcome = 'done';
        r.endedAtMs = this.now();
        r.note = `${r.note ? `${r.note}; ` : ''}ended by the heal`;
      }
      if (r.outcome === 'pending') {
        r.outcome = 'skipped';
        r.note = 'not started before the heal';
      }
    }
  }

  private at(ms: number, fn: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void fn();
    }, Math.max(0, ms - this.now()));
    this.timers.add(timer);
  }

  /** Runs `fn` after every earlier action on `key`; failures are recorded, never thrown. */
  private serial(key: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(key) ?? Promise.resolve()).then(fn).catch((err: unknown) => {
      this.deps.log(`fault action on ${key} failed: ${err instanceof Error ? err.message : String(err)}`);
    });
    this.chains.set(key, next);
    return next;
  }

  private links(f: PlannedFault): string[] {
    return f.kind === 'unit-partition' ? this.deps.agents.filter((a) => a.unit === f.target).map((a) => a.name) : [f.target];
  }

  private begin(f: PlannedFault, rec: FaultRecord): Promise<void> {
    const { cluster } = this.deps;
    const started = (note?: string) => {
      rec.startedAtMs = this.now();
      rec.outcome = f.durationMs > 0 ? 'active' : 'done';
      if (note) rec.note = note;
      this.deps.log(`+${(rec.startedAtMs / 1000).toFixed(1)}s ${f.kind} ${f.target}${f.mode ? ` (${f.mode})` : ''}${f.durationMs ? ` for ${f.durationMs} ms` : ''}${note ? `: ${note}` : ''}`);
    };
    const skip = (note: string) => {
      rec.outcome = 'skipped';
      rec.note = note;
    };
    switch (f.kind) {
      case 'agent-kill':
        return this.serial(`agent:${f.target}`, async () => {
          if (cluster.agentState(f.target) === 'dead') return skip('agent not running');
          await cluster.killAgent(f.target);
          started();
        });
      case 'agent-pause':
        return this.serial(`agent:${f.target}`, async () => {
          if (cluster.agentState(f.target) !== 'running') return skip('agent not running');
          cluster.pauseAgent(f.target, true);
          started();
        });
      case 'hub-kill':
        return this.serial('hub', async () => {
          if (cluster.hubState() === 'dead') return skip('hub not running');
          await cluster.killHub();
          started();
        });
      case 'hub-pause':
        return this.serial('hub', async () => {
          if (cluster.hubState() !== 'running') return skip('hub not running');
          cluster.pauseHub(true);
          started();
        });
      case 'link-cut':
      case 'link-blackhole':
      case 'unit-partition': {
        const mode = f.kind === 'link-cut' ? 'cut' : f.kind === 'link-blackhole' ? 'blackhole' : (f.mode ?? 'cut');
        return Promise.all(this.links(f).map((name) => this.serial(`link:${name}`, async () => {
          cluster.proxies.get(name)?.setMode(mode);
        }))).then(() => started(f.kind === 'unit-partition' ? `links ${this.links(f).join(', ')}` : undefined));
      }
      case 'instance-crash':
        return this.serial('crash', async () => {
          const victim = this.pickVictim();
          if (!victim) return skip('no running instance process to crash');
          try {
            process.kill(victim.pid, 'SIGKILL');
          } catch {
            return skip(`pid ${victim.pid} vanished before the kill`);
          }
          this.crashes.push({ atMs: this.now(), ...victim });
          started(`pid ${victim.pid} of ${victim.instance} on ${victim.node} (${victim.gen})`);
        });
    }
  }

  private end(f: PlannedFault, rec: FaultRecord): Promise<void> {
    const { cluster } = this.deps;
    const ended = (note?: string) => {
      if (rec.outcome !== 'active') return;
      rec.outcome = 'done';
      rec.endedAtMs = this.now();
      if (note) rec.note = `${rec.note ? `${rec.note}; ` : ''}${note}`;
      this.deps.log(`+${(rec.endedAtMs / 1000).toFixed(1)}s end ${f.kind} ${f.target}`);
    };
    switch (f.kind) {
      case 'agent-kill':
        return this.serial(`agent:${f.target}`, async () => {
          if (rec.outcome !== 'active') return;
          try {
            await cluster.startAgent(f.target);
            ended();
          } catch (err) {
            rec.outcome = 'failed';
            rec.note = `restart failed: ${err instanceof Error ? err.message : String(err)}`;
          }
        });
      case 'agent-pause':
        return this.serial(`agent:${f.target}`, async () => {
          if (rec.outcome !== 'active') return;
          cluster.pauseAgent(f.target, false);
          ended();
        });
      case 'hub-kill':
        return this.serial('hub', async () => {
          if (rec.outcome !== 'active') return;
          try {
            await cluster.startHub();
            ended();
          } catch (err) {
            rec.outcome = 'failed';
            rec.note = `restart failed: ${err instanceof Error ? err.message : String(err)}`;
          }
        });
      case 'hub-pause':
        return this.serial('hub', async () => {
          if (rec.outcome !== 'active') return;
          cluster.pauseHub(false);
          ended();
        });
      case 'link-cut':
      case 'link-blackhole':
      case 'unit-partition':
        return Promise.all(this.links(f).map((name) => this.serial(`link:${name}`, async () => {
          cluster.proxies.get(name)?.restore();
        }))).then(() => ended());
      case 'instance-crash':
        return Promise.resolve();
    }
  }

  /**
   * A running instance process that has written its start line (so its start is on record),
   * chosen with the crash RNG among all such processes in a stable order.
   */
  private pickVictim(): Omit<CrashRecord, 'atMs'> | undefined {
    const max = this.options.maxCrashesPerInstance ?? 3;
    const markers = readMarkers(this.deps.markerDir);
    const crashed = new Map<string, number>();
    for (const c of this.crashes) crashed.set(`${c.instance}@${c.node}`, (crashed.get(`${c.instance}@${c.node}`) ?? 0) + 1);
    const candidates = scanInstanceProcs(this.deps.runId).filter(
      (p) => (crashed.get(`${p.instance}@${p.node}`) ?? 0) < max && (markers.get(p.instance) ?? []).some((s) => s.pid === p.pid && s.node === p.node),
    );
    if (candidates.length === 0) return undefined;
    const p = candidates[this.deps.crashRng.int(0, candidates.length - 1)]!;
    return { pid: p.pid, instance: p.instance, node: p.node, gen: p.gen };
  }
}
