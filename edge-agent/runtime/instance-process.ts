import type { ChildProcess } from 'node:child_process';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { checkProcess, readStartTime, type Liveness } from './proc-stat.js';
import { describeSpawnError, spawnInstance, type SpawnRequest } from './spawn-process.js';
import { killGroupLeftovers, terminateGroup, type TerminateOutcome } from './terminate.js';

/** How a process ended. code and signal null: unknown (an adopted process). */
export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

/**
 * One process of an instance: a child spawned by this agent (its end comes as the 'exit' event)
 * or one adopted from an earlier agent (not our child: its end is found by `poll()`).
 * Identified by pid and /proc start time, so that a reused pid is never taken for it.
 */
export class InstanceProcess {
  private exitListener: ((exit: ProcessExit) => void) | null = null;
  private ended = false;

  private constructor(
    readonly pid: number,
    /** Field 22 of /proc/<pid>/stat; null where unknown (no /proc). */
    readonly startTime: number | null,
    readonly startedAt: string,
    readonly startedAtMs: number,
    private readonly child: ChildProcess | null,
    private readonly procFs: boolean,
  ) {}

  /**
   * Spawns the process of an instance. When the spawn fails (command not found, not executable,
   * no working directory...) returns null and calls `onFailed` with the status message, at once or
   * on the next tick.
   */
  static spawn(req: SpawnRequest, deps: { clock: Clock; procFs: boolean; log: Logger }, onFailed: (message: string) => void): InstanceProcess | null {
    let child: ChildProcess;
    try {
      child = spawnInstance(req);
    } catch (err) {
      onFailed(describeSpawnError(err, req.template.command));
      return null;
    }
    if (child.pid === undefined) {
      child.once('error', (err) => onFailed(describeSpawnError(err, req.template.command)));
      return null;
    }
    return InstanceProcess.fromChild(child as ChildProcess & { pid: number }, deps);
  }

  /** Wraps a child that spawned (has a pid). Call right after spawn: the pid is at worst a zombie yet. */
  static fromChild(child: ChildProcess & { pid: number }, deps: { clock: Clock; procFs: boolean; log: Logger }): InstanceProcess {
    const now = deps.clock.now();
    const p = new InstanceProcess(child.pid, deps.procFs ? readStartTime(child.pid) : null, new Date(now).toISOString(), now, child, deps.procFs);
    child.on('error', (err) => deps.log.warn({ err, pid: child.pid }, 'child process error'));
    child.once('exit', (code, signal) => p.end({ code, signal }));
    return p;
  }

  /** A process recorded by an earlier agent; the caller has checked that it is alive. */
  static adopt(record: { pid: number; startTime: number | null; startedAt: string | null }, deps: { clock: Clock; procFs: boolean }): InstanceProcess {
    const startedAt = record.startedAt ?? new Date(deps.clock.now()).toISOString();
    const parsed = Date.parse(startedAt);
    return new InstanceProcess(record.pid, record.startTime, startedAt, Number.isNaN(parsed) ? deps.clock.now() : parsed, null, deps.procFs);
  }

  get adopted(): boolean {
    return this.child === null;
  }

  /** Called once when the process ends (later calls replace the listener). */
  onExit(listener: (exit: ProcessExit) => void): void {
    this.exitListener = listener;
  }

  liveness(): Liveness {
    return checkProcess(this.pid, this.startTime, this.procFs);
  }

  /** For an adopted process: reports its end when the pid is gone or reused. */
  poll(): void {
    if (!this.adopted || this.ended) return;
    if (this.liveness() !== 'alive') this.end({ code: null, signal: null });
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once nothing of the group runs. */
  terminate(graceMs: number, clock: Clock, signal: AbortSignal): Promise<TerminateOutcome> {
    return terminateGroup({ pid: this.pid, leaderAlive: () => this.liveness() === 'alive', graceMs, clock, procFs: this.procFs, signal });
  }

  /**
   * SIGKILL to what is left of the group after the leader ended (e.g. children of a shell), so a
   * restart never runs beside leftovers. Skipped when the pid now belongs to another process.
   */
  killLeftovers(): void {
    if (this.liveness() === 'gone') killGroupLeftovers(this.pid);
  }

  /** Stops reporting; the process itself is left alone. */
  detach(): void {
    this.exitListener = null;
    this.child?.removeAllListeners('exit');
  }

  private end(exit: ProcessExit): void {
    if (this.ended) return;
    this.ended = true;
    this.exitListener?.(exit);
  }
}
