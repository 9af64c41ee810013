import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');
const bin = join(repoRoot, 'bin/outpost.js');

export interface HubProcessOptions {
  dataDir: string;
  /** 0 lets the OS choose; a restart passes the previous port so that agents find it again. */
  port?: number;
  /** More `outpost hub` flags, e.g. ['--admission-rate', '1000']. */
  args?: string[];
  /** Write a V8 CPU profile into this directory when the hub exits normally (SIGTERM). */
  cpuProfDir?: string;
}

/** The hub under test, as a user runs it (`outpost hub`), in its own process. */
export class HubProcess {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(readonly child: ChildProcess, readonly url: string, readonly adminToken: string) {
    this.exited = new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r();
      else child.once('exit', () => r());
    });
  }

  static async start(options: HubProcessOptions): Promise<HubProcess> {
    const infoFile = join(options.dataDir, 'hub.json');
    rmSync(infoFile, { force: true });
    const nodeArgs = options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [];
    const child = spawn(process.execPath, [...nodeArgs, bin, 'hub', '--listen', `127.0.0.1:${options.port ?? 0}`, '--data', options.dataDir, '--log-level', 'warn', ...(options.args ?? [])], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-20_000); });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`hub exited with ${child.exitCode}: ${err}`);
      if (existsSync(infoFile)) {
        const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { url: string; pid: number; adminTokenFile: string };
        if (info.pid === child.pid) {
          const hub = new HubProcess(child, info.url, readFileSync(info.adminTokenFile, 'utf8').trim());
          child.stderr?.on('data', (d: Buffer) => { hub.output = (hub.output + d.toString()).slice(-20_000); });
          return hub;
        }
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`hub did not start within 60 s: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** The hub's stderr (warnings and errors), last 20 kB. */
  log(): string {
    return this.output;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a CPU profile is written), SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Calls the hub API with the admin token; throws with the body on non-2xx. */
  async api<T>(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.adminToken}`, 'Content-Type': 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }
}
