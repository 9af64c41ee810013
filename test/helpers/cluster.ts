// Real processes for integration tests: a hub and agents started with the CLI as a user would,
// each with its own data dir under one temp dir, ports chosen by the OS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AnyObject } from '../../shared/api/index.js';
import { waitFor } from './wait.js';

export const repoRoot = resolve(import.meta.dirname, '../..');
const bin = join(repoRoot, 'bin/outpost.js');
const API = '/apis/outpost.dev/v1alpha1';

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>;
}

/** `launcher`: an executable that runs `outpost agent` itself (bin/outpost-agent): `args` without their leading 'agent'. */
function startProc(args: string[], env: NodeJS.ProcessEnv = {}, launcher?: string): Proc {
  // Bench profiling (bench tunnel --cpu-prof DIR): hub and agent write a V8 CPU profile at exit.
  const profDir = process.env.OUTPOST_BENCH_CPU_PROF_DIR;
  const nodeArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const child = launcher
    ? spawn(launcher, args.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [...nodeArgs, bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return { child, output: () => out, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') };
}

export class TestCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'outpost-it-'));
  hub: (Proc & { url: string; token: string }) | undefined;
  /** Start agents through this launcher (e.g. bin/outpost-agent) instead of `node bin/outpost.js agent`; `agentEnv`: its environment on top of this process's. */
  agentLauncher: string | undefined;
  agentEnv: NodeJS.ProcessEnv = {};
  private readonly procs = new Set<Proc>();

  get hubDir(): string {
    return join(this.dir, 'hub');
  }

  /** Starts the hub; a restart passes the previous port so that agents find it again. */
  async startHub(port = 0, extra: string[] = []): Promise<void> {
    rmSync(join(this.hubDir, 'hub.json'), { force: true });
    const p = startProc(['hub', '--listen', `127.0.0.1:${port}`, '--data', this.hubDir, '--read-deadline', '3s', '--ping-interval', '1s', '--log-level', 'debug', ...extra]);
    this.procs.add(p);
    const info = await waitFor(() => {
      const f = join(this.hubDir, 'hub.json');
      if (!existsSync(f)) return undefined;
      const v = JSON.parse(readFileSync(f, 'utf8')) as { url: string; pid: number; adminTokenFile: string };
      return v.pid === p.child.pid ? v : undefined;
    }, { timeoutMs: 30_000, message: `hub start; output:\n${p.output()}` });
    this.hub = { ...p, url: info.url, token: readFileSync(info.adminTokenFile, 'utf8').trim() };
  }

  /** Starts an agent; joins with a new token of `unit` when its data dir has no credential yet. */
  /** `tokenBody`: more fields of the join token request, e.g. `{ labels: { camera: 'yes' } }`. */
  async startAgent(name: string, unit: string, extra: string[] = [], hubUrl?: string, tokenBody: Record<string, unknown> = {}): Promise<Proc & { localApi: string }> {
    const hub = this.requireHub();
    const data = join(this.dir, 'agents', name);
    // Each agent's MQTT broker on its own free port (the default 1883 would be taken by the first).
    const args = ['agent', '--hub', hubUrl ?? hub.url, '--name', name, '--data', data, '--read-deadline', '3s', '--backoff-max', '1s', '--mqtt-listen', '127.0.0.1:0', '--peer-listen', '127.0.0.1:0', ...extra];
    if (!existsSync(join(data, 'credential.json'))) args.push('--token', await this.createToken(unit, tokenBody));
    return this.spawnAgent(args);
  }

  /** Starts an already joined agent, also when no hub runs. */
  async restartAgent(name: string, hubUrl: string, extra: string[] = []): Promise<Proc & { localApi: string }> {
    const data = join(this.dir, 'agents', name);
    return this.spawnAgent(['agent', '--hub', hubUrl, '--name', name, '--data', data, '--read-deadline', '3s', '--backoff-max', '1s', '--mqtt-listen', '127.0.0.1:0', '--peer-listen', '127.0.0.1:0', ...extra]);
  }

  private async spawnAgent(args: string[]): Promise<Proc & { localApi: string }> {
    const p = startProc(args, this.agentEnv, this.agentLauncher);
    this.procs.add(p);
    const localApi = await waitFor(() => /"localApi":"(http:\/\/[^"]+)"/.exec(p.output())?.[1], { timeoutMs: 30_000, message: `agent start; output:\n${p.output()}` });
    return { ...p, localApi };
  }

  async createToken(unit: string, body: Record<string, unknown> = {}): Promise<string> {
    const res = await this.api<{ token: string }>('POST', `${API}/jointokens`, { unit, ...body });
    return res.token;
  }

  hubPort(): number {
    return Number(new URL(this.requireHub().url).port);
  }

  requireHub(): Proc & { url: string; token: string } {
    if (!this.hub) throw new Error('hub not started');
    return this.hub;
  }

  /** Calls the hub API with the admin token; throws with the body on non-2xx. */
  async api<T = AnyObject>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(method, path, body);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  fetch(method: string, path: string, body?: unknown, token?: string): Promise<Response> {
    const hub = this.requireHub();
    return fetch(`${hub.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token ?? hub.token}`, 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  }

  /** Runs the CLI against this cluster's hub, as a user on the hub's machine would. */
  cli(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [bin, ...args], {
      env: { ...process.env, OUTPOST_HUB_DATA: this.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' },
      encoding: 'utf8',
      timeout: 60_000,
      ...(input === undefined ? {} : { input }),
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.kill()));
  }

  async cleanup(): Promise<void> {
    await this.stopAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export { processExists as pidAlive } from '../../shared/process.js';

/** Kills a process group (instances run in their own group), ignoring ones already gone. */
export function killGroup(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Runs the CLI asynchronously (a hub in this same process must keep serving while it runs).
 * `env` is merged over this process's environment.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => { clearTimeout(timer); resolveRun({ code, stdout, stderr }); });
    child.stdin.end(input ?? '');
  });
}
