import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { EngineError, EngineHttp } from './engine-http.js';
import type { ContainerCreateBody, ContainerInspect, ContainerSummary, PullProgress } from './engine-types.js';
import { imagePath, splitImageRef } from './image-ref.js';
import { killExecGroup } from './exec-reaper.js';
import { StreamDemux } from './stream-demux.js';

export { EngineError } from './engine-http.js';

/** An exec that outlived its timeout (its processes were killed): the command's failure, not the engine's. */
export class ExecTimedOut extends Error {
  override readonly name = 'ExecTimedOut';
}

/** Output of a command run in a container (probes); at most 64 KiB is kept. */
export interface ExecResult {
  exitCode: number;
  output: string;
}

/**
 * The Docker Engine API calls the container runtime makes, typed. One instance per socket; it
 * holds no state besides its connection pool.
 */
export class DockerEngine {
  private readonly http: EngineHttp;

  constructor(readonly socketPath: string) {
    this.http = new EngineHttp(socketPath);
  }

  /** Resolves when the engine answers; rejects with EngineError (status 0 when the socket is unreachable). */
  async ping(): Promise<void> {
    await this.http.json({ method: 'GET', path: '/_ping', timeoutMs: 5_000 });
  }

  async hasImage(ref: string): Promise<boolean> {
    try {
      await this.http.json({ method: 'GET', path: `/images/${imagePath(ref)}/json` });
      return true;
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return false;
      throw err;
    }
  }

  /**
   * Pulls an image; `onProgress` gets each progress line. The engine reports a failed pull either
   * with an HTTP error or, once streaming has begun, as an `error` line: both reject.
   */
  async pullImage(ref: string, onProgress: (p: PullProgress) => void, signal?: AbortSignal): Promise<void> {
    const { fromImage, tag } = splitImageRef(ref);
    const res = await this.http.stream({ method: 'POST', path: '/images/create', query: { fromImage, tag }, timeoutMs: 0, ...(signal ? { signal } : {}) });
    let failure: string | undefined;
    await forEachLine(res, (line) => {
      let p: PullProgress;
      try {
        p = JSON.parse(line) as PullProgress;
      } catch {
        return;
      }
      if (p.error || p.errorDetail?.message) failure = p.errorDetail?.message ?? p.error;
      else onProgress(p);
    });
    if (failure !== undefined) throw new EngineError(failure, 500);
  }

  /** Creates a container and returns its id. */
  async createContainer(name: string, body: ContainerCreateBody): Promise<string> {
    const res = await this.http.json<{ Id: string }>({ method: 'POST', path: '/containers/create', query: { name }, body });
    return res.Id;
  }

  /** Starts a created or exited container; one that already runs is fine (304). */
  async startContainer(id: string): Promise<void> {
    try {
      await this.http.json({ method: 'POST', path: `/containers/${encodeURIComponent(id)}/start`, timeoutMs: 60_000 });
    } catch (err) {
      if (!(err instanceof EngineError && err.status === 304)) throw err;
    }
  }

  /**
   * Sends the container's stop signal, then SIGKILL after `timeoutSeconds` (default: the
   * StopTimeout it was created with); resolves once it is stopped.
   */
  async stopContainer(id: string, timeoutSeconds?: number): Promise<void> {
    try {
      await this.http.json({ method: 'POST', path: `/containers/${encodeURIComponent(id)}/stop`, query: { t: timeoutSeconds }, timeoutMs: (timeoutSeconds ?? 3600) * 1000 + 30_000 });
    } catch (err) {
      if (!(err instanceof EngineError && (err.status === 304 || err.status === 404))) throw err;
    }
  }

  /**
   * Removes a container, running or not; one that is gone already is fine. Its anonymous volumes
   * are kept: a container removed by mistake must not take data with it (`podman volume prune`).
   */
  async removeContainer(id: string): Promise<void> {
    try {
      await this.http.json({ method: 'DELETE', path: `/containers/${encodeURIComponent(id)}`, query: { force: true }, timeoutMs: 60_000 });
    } catch (err) {
      if (!(err instanceof EngineError && err.status === 404)) throw err;
    }
  }

  /** The container, or undefined when it does not exist. */
  async inspectContainer(id: string): Promise<ContainerInspect | undefined> {
    try {
      return await this.http.json<ContainerInspect>({ method: 'GET', path: `/containers/${encodeURIComponent(id)}/json` });
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Every container (running or not) carrying all of these labels (`key=value` or `key`). */
  async listContainers(labels: string[]): Promise<ContainerSummary[]> {
    const list = await this.http.json<ContainerSummary[] | null>({ method: 'GET', path: '/containers/json', query: { all: true, filters: JSON.stringify({ label: labels }) } });
    return list ?? [];
  }

  /**
   * The container's output (stdout and stderr, demultiplexed) logged after `since` (RFC 3339 with
   * nanoseconds or fractional Unix seconds), followed until the container stops or `signal` aborts.
   */
  async followLogs(id: string, since: string, onData: (data: Buffer) => void, signal: AbortSignal): Promise<void> {
    const res = await this.http.stream({
      method: 'GET',
      path: `/containers/${encodeURIComponent(id)}/logs`,
      query: { follow: true, stdout: true, stderr: true, since },
      timeoutMs: 0,
      signal,
    });
    const demux = new StreamDemux((_stream, payload) => onData(payload));
    await new Promise<void>((resolve, reject) => {
      res.on('data', (c: Buffer) => demux.push(c));
      res.on('end', resolve);
      res.on('close', resolve);
      res.on('error', reject);
    });
  }

  /**
   * Runs a command in a running container and waits for it. After `timeoutMs` (counted from the
   * exec's start) or when `signal` aborts, its process group is killed (see killExecGroup) and the
   * call rejects with ExecTimedOut or the abort reason. Engine failures reject with EngineError.
   */
  async exec(id: string, command: string[], timeoutMs: number, signal?: AbortSignal): Promise<ExecResult> {
    const created = await this.http.json<{ Id: string }>({
      method: 'POST',
      path: `/containers/${encodeURIComponent(id)}/exec`,
      body: { Cmd: command, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false },
      ...(signal ? { signal } : {}),
    });
    const execPath = `/exec/${encodeURIComponent(created.Id)}`;
    const timeout = AbortSignal.timeout(timeoutMs);
    const ended = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const out: Buffer[] = [];
    let kept = 0;
    const demux = new StreamDemux((_s, payload) => {
      if (kept >= 65536) return;
      out.push(payload.subarray(0, 65536 - kept));
      kept += payload.length;
    });
    try {
      const res = await this.http.stream({ method: 'POST', path: `${execPath}/start`, body: { Detach: false, Tty: false }, timeoutMs: 0, signal: ended });
      await new Promise<void>((resolve) => {
        res.on('data', (c: Buffer) => demux.push(c));
        res.on('end', resolve);
        res.on('close', resolve);
        res.on('error', () => resolve());
      });
    } catch (err) {
      if (!ended.aborted) throw err;
    }
    if (ended.aborted) {
      await this.killExec(execPath, id);
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('exec aborted');
      throw new ExecTimedOut(`timed out after ${timeoutMs / 1000} s`);
    }
    const info = await this.http.json<{ ExitCode?: number | null; Running?: boolean }>({ method: 'GET', path: `${execPath}/json`, timeoutMs: 10_000 });
    return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(out).toString('utf8') };
  }

  /** Creates an exec (not started) in a running container; returns its id. 409: not running. */
  async createExec(id: string, body: { Cmd: string[]; Tty: boolean; AttachStdin: boolean }): Promise<string> {
    const created = await this.http.json<{ Id: string }>({
      method: 'POST',
      path: `/containers/${encodeURIComponent(id)}/exec`,
      body: { ...body, AttachStdout: true, AttachStderr: true },
    });
    return created.Id;
  }

  /**
   * Starts an exec attached: the raw connection carries stdin one way and the output the other
   * (multiplexed with 8-byte headers without a tty, see StreamDemux; raw with one).
   */
  async startExecAttached(execId: string, tty: boolean): Promise<{ socket: Socket; head: Buffer }> {
    return this.http.upgrade({ method: 'POST', path: `/exec/${encodeURIComponent(execId)}/start`, body: { Detach: false, Tty: tty } });
  }

  async resizeExec(execId: string, cols: number, rows: number): Promise<void> {
    await this.http.json({ method: 'POST', path: `/exec/${encodeURIComponent(execId)}/resize`, query: { h: rows, w: cols }, timeoutMs: 10_000 });
  }

  async inspectExec(execId: string): Promise<{ ExitCode?: number | null; Running?: boolean; Pid?: number }> {
    return this.http.json({ method: 'GET', path: `/exec/${encodeURIComponent(execId)}/json`, timeoutMs: 10_000 });
  }

  /** Best effort: the engine does not stop an exec whose client went away. */
  private async killExec(execPath: string, containerId: string): Promise<void> {
    try {
      const info = await this.http.json<{ Pid?: number; Running?: boolean }>({ method: 'GET', path: `${execPath}/json`, timeoutMs: 10_000 });
      if (info.Running !== false && info.Pid) killExecGroup(info.Pid, containerId);
    } catch {
      // The engine is gone too: nothing to ask.
    }
  }

  close(): void {
    this.http.close();
  }
}

/** Calls `fn` with each non-empty line of a streamed response (pull progress is one JSON object a line). */
async function forEachLine(res: IncomingMessage, fn: (line: string) => void): Promise<void> {
  let rest = '';
  for await (const chunk of res as AsyncIterable<Buffer>) {
    rest += chunk.toString('utf8');
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line) fn(line);
    }
  }
  if (rest.trim()) fn(rest.trim());
}
