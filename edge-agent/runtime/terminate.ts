import type { Clock } from '../../shared/clock.js';
import { processGroupAlive } from './proc-stat.js';

export interface TerminateRequest {
  /** Pid of the group leader; the group id is the same (children are spawned detached). */
  pid: number;
  /** Whether the leader itself still runs (it may have left its group). */
  leaderAlive: () => boolean;
  graceMs: number;
  clock: Clock;
  procFs: boolean;
  /** Aborts the wait (the runtime stops supervising); the process is left as it is. */
  signal: AbortSignal;
  /** Check interval while waiting; default 50 ms. */
  checkMs?: number;
  /** How long to wait for the group to vanish after SIGKILL; default 5 s. */
  killWaitMs?: number;
}

/** exited: gone within the grace period; killed: needed SIGKILL; stuck: survived SIGKILL; aborted. */
export type TerminateOutcome = 'exited' | 'killed' | 'stuck' | 'aborted';

/**
 * SIGTERM to the process group, up to `graceMs` for every member to exit, then SIGKILL to the
 * group. Resolves once nothing of the group runs, so that a replacement never runs beside it.
 */
export async function terminateGroup(req: TerminateRequest): Promise<TerminateOutcome> {
  const alive = () => req.leaderAlive() || processGroupAlive(req.pid, req.procFs);
  if (!alive()) return 'exited';
  sendToGroup(req.pid, 'SIGTERM', req.leaderAlive());
  const gone = await waitUntil(() => !alive(), req.graceMs, req);
  if (gone === 'aborted') return 'aborted';
  if (gone) return 'exited';
  sendToGroup(req.pid, 'SIGKILL', req.leaderAlive());
  const killed = await waitUntil(() => !alive(), req.killWaitMs ?? 5000, req);
  if (killed === 'aborted') return 'aborted';
  return killed ? 'killed' : 'stuck';
}

/** Event text of a finished stop. */
export function describeStop(outcome: Exclude<TerminateOutcome, 'aborted'>, pid: number, graceMs: number): string {
  if (outcome === 'exited') return `pid ${pid} stopped`;
  const killed = `pid ${pid} did not exit within ${graceMs / 1000}s of SIGTERM; sent SIGKILL to its process group`;
  return outcome === 'killed' ? killed : `${killed}, and part of it still runs`;
}

/**
 * Signals group `pid`; falls back to the pid itself when there is no such group (the leader moved
 * to another group), but only while the caller knows the leader is the recorded process: a pid
 * alone may have been reused.
 */
export function sendToGroup(pid: number, signal: NodeJS.Signals, leaderAlive: boolean): void {
  try {
    process.kill(-pid, signal);
    return;
  } catch {
    // ESRCH (no such group) or EPERM: try the leader alone.
  }
  if (!leaderAlive) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Gone meanwhile.
  }
}

async function waitUntil(done: () => boolean, timeoutMs: number, req: TerminateRequest): Promise<boolean | 'aborted'> {
  const deadline = req.clock.now() + timeoutMs;
  for (;;) {
    if (req.signal.aborted) return 'aborted';
    if (done()) return true;
    const left = deadline - req.clock.now();
    if (left <= 0) return false;
    await pause(req.clock, Math.min(left, req.checkMs ?? 50), req.signal);
  }
}

function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clock.clearTimeout(timer);
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * SIGKILL to what is left of the process group of a leader that no longer exists. Safe only then:
 * a pid is not reused while a process group of that id has members.
 */
export function killGroupLeftovers(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: nothing left.
  }
}
