import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { systemClock, type Clock } from '../../../shared/clock.js';
import { describeSpawnError } from '../spawn-process.js';
import { killGroupLeftovers } from '../terminate.js';
import type { ProbeTarget } from './prober.js';

/** Output of an exec probe kept for its message (Kubernetes keeps 10 KiB). */
const MAX_OUTPUT_BYTES = 10 * 1024;

export interface ProcessProbeTargetOptions {
  /** The instance's environment (instanceEnv). */
  env: Record<string, string>;
  /** The instance's working directory. */
  cwd: string;
  clock?: Clock;
}

/** Probes of a process instance: httpGet/tcpSocket on 127.0.0.1, exec as a child process beside it. */
export function processProbeTarget(options: ProcessProbeTargetOptions): ProbeTarget {
  return { host: '127.0.0.1', exec: (command, timeoutMs, signal) => runProbeCommand(command, timeoutMs, options, signal) };
}

/**
 * Runs `command` directly (no shell) in its own process group, stdout and stderr captured up to
 * MAX_OUTPUT_BYTES. After `timeoutMs`, or when `signal` aborts (the prober stops, e.g. the agent
 * exits), the whole group is killed and the promise rejects; when the command exits, what it left
 * behind in its group is killed too, so a probe never leaves processes.
 * Death by a signal gives exit code 128 + the signal number, as in a shell.
 */
export function runProbeCommand(command: string[], timeoutMs: number, options: ProcessProbeTargetOptions, signal?: AbortSignal): Promise<{ exitCode: number; output: string }> {
  const clock = options.clock ?? systemClock;
  return new Promise((resolve, reject) => {
    const [file, ...args] = command;
    if (file === undefined || file === '') return reject(new Error('empty command'));
    if (signal?.aborted) return reject(new Error('aborted'));
    let child: ChildProcess;
    try {
      child = spawn(file, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      return reject(new Error(describeSpawnError(err, file)));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (chunk: Buffer) => {
      if (size >= MAX_OUTPUT_BYTES) return;
      const part = chunk.subarray(0, MAX_OUTPUT_BYTES - size);
      chunks.push(part);
      size += part.length;
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const timer = clock.setTimeout(() => {
      if (child.pid !== undefined) killGroupLeftovers(child.pid);
      reject(new Error(`timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    timer.unref?.();
    const onAbort = () => {
      clock.clearTimeout(timer);
      if (child.pid !== undefined) killGroupLeftovers(child.pid);
      reject(new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      clock.clearTimeout(timer);
      reject(new Error(describeSpawnError(err, file)));
    });
    child.once('exit', () => {
      // The leader is gone: its group may only hold what it left running (a pgid is not reused while it has members).
      if (child.pid !== undefined) killGroupLeftovers(child.pid);
    });
    child.once('close', (code, killedBy) => {
      signal?.removeEventListener('abort', onAbort);
      clock.clearTimeout(timer);
      const exitCode = code ?? 128 + (killedBy ? (constants.signals[killedBy] ?? 0) : 0);
      resolve({ exitCode, output: Buffer.concat(chunks).toString('utf8') });
    });
  });
}
