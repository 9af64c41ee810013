import { constants } from 'node:os';
import type { InstanceStatus } from '../../../shared/api/instance.js';
import { succeeded, type ExitInfo } from '../restart-policy.js';

// The status of a container instance in each situation: the same shape as a process instance's,
// plus the container's id.

export interface ContainerStatusBase {
  restarts: number;
  templateHash: string;
}

export function pendingContainerStatus(base: ContainerStatusBase, message?: string): InstanceStatus {
  return { phase: 'Pending', ready: false, restarts: base.restarts, templateHash: base.templateHash, ...(message !== undefined && { message }) };
}

export function runningContainerStatus(
  base: ContainerStatusBase,
  c: { id: string; pid: number | null; startedAt: string | null },
  readiness: { ready: boolean; message?: string },
): InstanceStatus {
  return {
    phase: 'Running',
    ready: readiness.ready,
    restarts: base.restarts,
    ...(c.pid !== null && c.pid > 0 && { pid: c.pid }),
    containerId: c.id,
    ...(c.startedAt !== null && { startedAt: c.startedAt }),
    templateHash: base.templateHash,
    ...(readiness.message !== undefined && { message: readiness.message }),
  };
}

/** Failed or Succeeded after `exit`; a container that never started has no exit code. */
export function exitedContainerStatus(base: ContainerStatusBase, exit: ExitInfo, containerId: string | null, message = exit.message): InstanceStatus {
  return {
    phase: succeeded(exit) ? 'Succeeded' : 'Failed',
    ready: false,
    restarts: base.restarts,
    ...(!exit.failedStart && { exitCode: exit.code, signal: exit.signal }),
    ...(containerId !== null && { containerId }),
    templateHash: base.templateHash,
    message,
  };
}

/**
 * A container's exit as an ExitInfo. The engine gives only a code; 128 + n is death by signal n
 * (137 = SIGKILL), named in the message like a process's.
 */
export function containerExit(state: { ExitCode?: number; OOMKilled?: boolean; Error?: string }): ExitInfo {
  const code = state.ExitCode ?? null;
  let message = code === null ? 'exited (exit code unknown)' : `exited with code ${code}`;
  const signal = code !== null && code > 128 ? signalName(code - 128) : null;
  if (signal) message += ` (${signal})`;
  if (state.OOMKilled) message += ': out of memory (memory limit reached)';
  else if (state.Error) message += `: ${state.Error}`;
  return { code, signal, message };
}

function signalName(n: number): string | null {
  for (const [name, num] of Object.entries(constants.signals)) if (num === n) return name;
  return null;
}

/** The first 12 characters of a container id, as `docker ps` shows it. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}
