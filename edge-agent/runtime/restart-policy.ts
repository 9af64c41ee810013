import type { RestartPolicy } from '../../shared/api/edge-app.js';

/** How a process ended. code and signal both null: unknown (adopted process, or exited while the agent was down). */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Human text for status and events, e.g. "exited with code 3", "command not found: foo". */
  message: string;
  /** The process never started (spawn failed). */
  failedStart?: boolean;
}

/** Whether the policy restarts after this exit. Unknown exits and failed starts count as failures. */
export function shouldRestart(policy: RestartPolicy | undefined, exit: ExitInfo): boolean {
  switch (policy ?? 'Always') {
    case 'Always':
      return true;
    case 'OnFailure':
      return !succeeded(exit);
    case 'Never':
      return false;
  }
}

export function succeeded(exit: ExitInfo): boolean {
  return exit.code === 0 && !exit.failedStart;
}

export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `killed by signal ${signal}`;
  if (code !== null) return `exited with code ${code}`;
  return 'exited (exit code unknown)';
}

/** Delay before the restart that follows `crashes` consecutive crashes (0 = first restart). */
export function backoffDelay(crashes: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(crashes, 40));
}

/** "1.5s", "300ms", "5m0s". */
export function formatDelay(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}
