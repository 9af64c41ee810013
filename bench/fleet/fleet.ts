import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { FleetNode, FleetReply, FleetRequest, FleetStats, JoinResult, WatchResult, WatchSpec } from './protocol.js';

const childScript = join(import.meta.dirname, 'fleet-child.ts');

/** One fleet process as seen from the scenario: request/response over IPC, with a deadline. */
class FleetProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly ready: Promise<void>;
  nodes: FleetNode[] = [];

  constructor(readonly child: ChildProcess) {
    let readyResolve: () => void = () => undefined;
    this.ready = new Promise((r) => { readyResolve = r; });
    child.on('message', (m: FleetReply) => {
      if (m.id === 0) return readyResolve();
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(m.error));
    });
    child.once('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`fleet process exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  request<T>(req: FleetRequest, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`fleet request ${req.type} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as T); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.send({ id, req });
    });
  }
}

export interface FleetOptions {
  /** Agents per fleet process. Default 5000. */
  perProcess?: number;
}

/** Sum of the fleet processes' stats. */
export interface FleetTotals extends Omit<FleetStats, 'sinceMark'> {
  resynced: number;
  resyncTimes: number[];
  connectTimes: number[];
}

/**
 * Simulated agents in their own processes (never the hub's), several thousand per process. Each
 * agent runs the real agent link code (HubLink, DesiredCache, Outbox) on in-memory SQLite.
 */
export class Fleet {
  private constructor(private readonly procs: FleetProcess[]) {}

  static async spawn(nodes: number, options: FleetOptions = {}): Promise<Fleet> {
    const per = options.perProcess ?? 5000;
    const count = Math.max(1, Math.ceil(nodes / per));
    const procs = Array.from({ length: count }, () => new FleetProcess(
      fork(childScript, [], { execArgv: ['--import', 'tsx', '--max-old-space-size=4096'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    ));
    await Promise.race([
      Promise.all(procs.map((p) => p.ready)),
      new Promise((_, reject) => setTimeout(() => reject(new Error('fleet processes did not start within 60 s')), 60_000).unref()),
    ]);
    return new Fleet(procs);
  }

  get processes(): number {
    return this.procs.length;
  }

  pids(): number[] {
    return this.procs.map((p) => p.child.pid ?? 0);
  }

  /** Assigns nodes round-robin to processes (so that each unit spreads over all of them). */
  private split(nodes: FleetNode[]): FleetNode[][] {
    const parts: FleetNode[][] = this.procs.map(() => []);
    nodes.forEach((n, i) => parts[i % parts.length]!.push(n));
    return parts;
  }

  /** Joins the nodes with their tokens (the agent's own join code); returns every credential. */
  async join(hubUrl: string, nodes: FleetNode[], concurrency = 16, timeoutMs = 600_000): Promise<JoinResult> {
    const parts = this.split(nodes);
    const results = await Promise.all(this.procs.map((p, i) => p.request<JoinResult>({ type: 'join', hubUrl, nodes: parts[i]!, concurrency }, timeoutMs)));
    return {
      credentials: Object.assign({}, ...results.map((r) => r.credentials)) as Record<string, string>,
      failures: results.flatMap((r) => r.failures),
      joinMs: results.flatMap((r) => r.joinMs),
    };
  }

  /** Starts agents for joined nodes; `ratePerSecond` over the whole fleet (0: as fast as possible). */
  async start(hubUrl: string, nodes: FleetNode[], ratePerSecond = 0, timeoutMs = 600_000): Promise<void> {
    const parts = this.split(nodes);
    const per = ratePerSecond > 0 ? ratePerSecond / this.procs.length : 0;
    await Promise.all(this.procs.map((p, i) => p.request({ type: 'start', hubUrl, nodes: parts[i]!, ratePerSecond: per }, timeoutMs)));
  }

  /** Joins and starts new agents at `ratePerSecond` over the whole fleet. */
  async joinAndStart(hubUrl: string, nodes: FleetNode[], ratePerSecond: number, timeoutMs = 600_000): Promise<JoinResult> {
    const parts = this.split(nodes);
    const results = await Promise.all(this.procs.map((p, i) => p.request<JoinResult>({ type: 'join-start', hubUrl, nodes: parts[i]!, ratePerSecond: ratePerSecond / this.procs.length }, timeoutMs)));
    return {
      credentials: Object.assign({}, ...results.map((r) => r.credentials)) as Record<string, string>,
      failures: results.flatMap((r) => r.failures),
      joinMs: results.flatMap((r) => r.joinMs),
    };
  }

  async watch(spec: WatchSpec): Promise<void> {
    await Promise.all(this.procs.map((p) => p.request({ type: 'watch', watch: spec }, 30_000)));
  }

  async watchResult(spec: WatchSpec): Promise<WatchResult> {
    const rs = await Promise.all(this.procs.map((p) => p.request<WatchResult>({ type: 'watch-result', watch: spec }, 30_000)));
    return { times: rs.flatMap((r) => r.times), missing: rs.flatMap((r) => r.missing) };
  }

  /** Starts counting resyncs and connects anew; returns the epoch ms of the mark. */
  async mark(): Promise<number> {
    const ats = await Promise.all(this.procs.map((p) => p.request<number>({ type: 'mark' }, 30_000)));
    return Math.min(...ats);
  }

  async stats(): Promise<FleetTotals> {
    const all = await Promise.all(this.procs.map((p) => p.request<FleetStats>({ type: 'stats' }, 30_000)));
    const lastErrors: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(s.lastErrors)) lastErrors[k] = (lastErrors[k] ?? 0) + v;
    const disconnectReasons: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(s.disconnectReasons)) disconnectReasons[k] = (disconnectReasons[k] ?? 0) + v;
    const sum = (f: (s: FleetStats) => number) => all.reduce((a, s) => a + f(s), 0);
    return {
      agents: sum((s) => s.agents), connected: sum((s) => s.connected), disconnects: sum((s) => s.disconnects), sessions: sum((s) => s.sessions),
      rssBytes: sum((s) => s.rssBytes), lastErrors, disconnectReasons, resynced: sum((s) => s.sinceMark.resynced),
      resyncTimes: all.flatMap((s) => s.sinceMark.resyncTimes), connectTimes: all.flatMap((s) => s.sinceMark.connectTimes),
    };
  }

  /** Stops every agent (closing its link) and ends the processes; SIGKILL after the deadline. */
  async stop(timeoutMs = 20_000): Promise<void> {
    await Promise.allSettled(this.procs.map((p) => p.request({ type: 'stop' }, timeoutMs)));
    this.kill();
  }

  kill(): void {
    for (const p of this.procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
}
