import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { FaultProxy } from './fault-proxy.js';
import { httpRequest } from './http.js';
import { freePort } from '../shared/free-port.js';

const repoRoot = resolve(import.meta.dirname, '..');
const bin = join(repoRoot, 'bin/outpost.js');

/** running; paused (SIGSTOP); dead (SIGKILLed or exited on its own). */
export type ProcState = 'running' | 'paused' | 'dead';

/** Environment variable that marks the hub and agent processes of one run (for cleanup by /proc scan). */
export const RUN_ENV = 'OUTPOST_CHAOS_RUN';

export interface AgentSpec {
  name: string;
  unit: string;
}

export interface ChaosClusterOptions {
  /** Temp dir of the run: hub/, agents/<name>/, logs/. */
  dir: string;
  runId: string;
  agents: AgentSpec[];
  /** More flags for every agent (a scenario's own settings). */
  agentArgs?: string[];
}

interface Managed {
  child: ChildProcess;
  pid: number;
  state: ProcState;
  exited: Promise<void>;
  /** Incarnation number: 1 for the first start. */
  incarnation: number;
}

/**
 * The real processes of a run: one hub on a fixed port (chosen once, so that a restarted hub is
 * found again at the same address) and N agents, each dialling the hub through its own
 * FaultProxy. Hub and agents are started through the CLI as an operator would, each in its own
 * process group (so SIGSTOP/SIGKILL reach every thread and helper), with output appended to
 * logs/<name>.log across restarts.
 */
export class ChaosCluster {
  hubPort = 0;
  adminToken = '';
  readonly proxies = new Map<string, FaultProxy>();
  private hub: Managed | undefined;
  private readonly agentProcs = new Map<string, Managed>();
  private readonly localApis = new Map<string, string>();
  private hubStarts = 0;
  private readonly agentStarts = new Map<string, number>();

  constructor(readonly options: ChaosClusterOptions) {
    mkdirSync(join(options.dir, 'logs'), { recursive: true });
  }

  get hubUrl(): string {
    return `http://127.0.0.1:${this.hubPort}`;
  }

  get hubDir(): string {
    return join(this.options.dir, 'hub');
  }

  agentDir(name: string): string {
    return join(this.options.dir, 'agents', name);
  }

  logFile(name: string): string {
    return join(this.options.dir, 'logs', `${name}.log`);
  }

  hubState(): ProcState {
    return this.hub?.state ?? 'dead';
  }

  agentState(name: string): ProcState {
    return this.agentProcs.get(name)?.state ?? 'dead';
  }

  /** The agent's local API URL from its latest start, if it got that far. */
  localApi(name: string): string | undefined {
    return this.localApis.get(name);
  }

  /** Picks the hub port, starts one proxy per agent and the hub. */
  async init(): Promise<void> {
    this.hubPort = await freePort();
    for (const a of this.options.agents) {
      const proxy = new FaultProxy({ targetPort: this.hubPort });
      await proxy.start();
      this.proxies.set(a.name, proxy);
    }
    await this.startHub();
    this.adminToken = readFileSync(join(this.hubDir, 'admin-token'), 'utf8').trim();
  }

  /** Starts the hub on the run's port and waits until it wrote hub.json and answers /healthz. */
  async startHub(): Promise<void> {
    if (this.hub && this.hub.state !== 'dead') throw new Error('hub already runs');
    for (let attempt = 1; ; attempt++) {
      rmSync(join(this.hubDir, 'hub.json'), { force: true });
      const m = this.spawnProc('hub', ['hub', '--listen', `127.0.0.1:${this.hubPort}`, '--data', this.hubDir, '--read-deadline', '3s', '--ping-interval', '1s'], ++this.hubStarts);
      this.hub = m;
      const ok = await this.waitUntil(m, 30_000, async () => {
        const info = join(this.hubDir, 'hub.json');
        if (!existsSync(info)) return false;
        try {
          if ((JSON.parse(readFileSync(info, 'utf8')) as { pid: number }).pid !== m.pid) return false;
          return (await httpRequest(`${this.hubUrl}/healthz`, { timeoutMs: 2000 })).status === 200;
        } catch {
          return false;
        }
      });
      if (ok) return;
      await this.kill(m);
      // The port can be briefly busy right after a SIGKILL; anything else repeats.
      if (attempt >= 3) throw new Error(`hub did not start (see ${this.logFile('hub')})`);
      await delay(500);
    }
  }

  /** Starts an agent (joining with `token` on its first start) and waits for its local API line. */
  async startAgent(name: string, token?: string): Promise<void> {
    const cur = this.agentProcs.get(name);
    if (cur && cur.state !== 'dead') throw new Error(`agent ${name} already runs`);
    const proxy = this.proxies.get(name);
    if (!proxy) throw new Error(`no proxy for agent ${name}`);
    const args = ['agent', '--hub', proxy.url, '--name', name, '--data', this.agentDir(name), '--read-deadline', '3s', '--backoff-max', '1s', '--mqtt-listen', 'none', '--peer-listen', '127.0.0.1:0'];
    args.push(...(this.options.agentArgs ?? []));
    if (token) args.push('--token', token);
    const n = (this.agentStarts.get(name) ?? 0) + 1;
    this.agentStarts.set(name, n);
    this.localApis.delete(name);
    const logOffset = fileSize(this.logFile(name));
    const m = this.spawnProc(name, args, n);
    this.agentProcs.set(name, m);
    let found: string | undefined;
    const ok = await this.waitUntil(m, 45_000, () => {
      const text = readFrom(this.logFile(name), logOffset);
      found = /"localApi":"(http:\/\/[^"]+)"/.exec(text)?.[1];
      return found !== undefined;
    });
    if (!ok || !found) throw new Error(`agent ${name} did not start (see ${this.logFile(name)})`);
    this.localApis.set(name, found);
  }

  killHub(): Promise<void> {
    return this.hub ? this.kill(this.hub) : Promise.resolve();
  }

  killAgent(name: string): Promise<void> {
    const m = this.agentProcs.get(name);
    return m ? this.kill(m) : Promise.resolve();
  }

  /** SIGSTOP (true) or SIGCONT (false) to the hub's process group. */
  pauseHub(paused: boolean): void {
    if (this.hub) this.signalPause(this.hub, paused);
  }

  pauseAgent(name: string, paused: boolean): void {
    const m = this.agentProcs.get(name);
    if (m) this.signalPause(m, paused);
  }

  /** Pids of the hub and agents that run now (for cleanup checks). */
  livePids(): number[] {
    return [this.hub, ...this.agentProcs.values()].filter((m): m is Managed => m !== undefined && m.state !== 'dead').map((m) => m.pid);
  }

  /** Kills every process of the cluster (SIGCONT first so nothing stays stopped) and the proxies. */
  async shutdown(): Promise<void> {
    const all = [this.hub, ...this.agentProcs.values()].filter((m): m is Managed => m !== undefined);
    await Promise.all(all.map((m) => this.kill(m)));
    for (const p of this.proxies.values()) await p.stop();
  }

  /** Synchronous last-resort cleanup (process exit): SIGKILL every group still alive. */
  killAllSync(): void {
    for (const m of [this.hub, ...this.agentProcs.values()]) {
      if (!m || m.state === 'dead') continue;
      signalGroup(m.pid, 'SIGCONT');
      signalGroup(m.pid, 'SIGKILL');
    }
  }

  private spawnProc(name: string, args: string[], incarnation: number): Managed {
    const fd = openSync(this.logFile(name), 'a');
    let child: ChildProcess;
    try {
      // Output goes straight to a file: a pipe the harness is slow to drain would stall the
      // process on its own log writes, a fault the harness did not mean to inject.
      child = spawn(process.execPath, [bin, ...args], {
        cwd: repoRoot,
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, [RUN_ENV]: this.options.runId, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' },
      });
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) throw new Error(`could not start ${name}`);
    child.unref();
    const m: Managed = { child, pid: child.pid, state: 'running', incarnation, exited: undefined as unknown as Promise<void> };
    m.exited = new Promise<void>((r) => child.once('exit', () => { m.state = 'dead'; r(); }));
    child.on('error', () => undefined);
    return m;
  }

  private async waitUntil(m: Managed, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (m.state === 'dead') return false;
      if (await check()) return true;
      await delay(100);
    }
    return false;
  }

  private async kill(m: Managed): Promise<void> {
    if (m.state === 'dead') return;
    signalGroup(m.pid, 'SIGKILL');
    signalGroup(m.pid, 'SIGCONT');
    const timeout = new AbortController();
    await Promise.race([m.exited, delay(10_000, undefined, { signal: timeout.signal }).catch(() => undefined)]);
    timeout.abort();
    m.state = 'dead';
  }

  private signalPause(m: Managed, paused: boolean): void {
    if (m.state === 'dead') return;
    signalGroup(m.pid, paused ? 'SIGSTOP' : 'SIGCONT');
    m.state = paused ? 'paused' : 'running';
  }
}

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The text of a file from `offset` on (at most 1 MiB). */
function readFrom(path: string, offset: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const buf = Buffer.alloc(Math.min(1024 * 1024, Math.max(0, statSync(path).size - offset)));
    const n = readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
