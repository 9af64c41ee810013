import type { Probe } from '../../../shared/api/workload.js';
import { clip, type Check, type CheckOutcome } from './check.js';

/** What runs an exec probe's command: see ProbeTarget.exec in prober.ts. */
export type ExecFn = (command: string[], timeoutMs: number, signal: AbortSignal) => Promise<{ exitCode: number; output: string }>;

/** Success: the command exits 0 within the timeout (the ExecFn kills it when the time is up or `signal` aborts). */
export function execCheck(exec: NonNullable<Probe['exec']>, run: ExecFn): Check {
  const label = `exec ${clip(JSON.stringify(exec.command), 200)}`;
  return {
    label,
    selfTimed: true,
    async run(signal: AbortSignal, timeoutMs: number): Promise<CheckOutcome> {
      const { exitCode, output } = await run(exec.command, timeoutMs, signal);
      if (exitCode === 0) return { ok: true, message: `${label} exited 0` };
      const line = firstLine(output);
      return { ok: false, message: `${label} exited ${exitCode}${line ? `: ${line}` : ''}` };
    },
  };
}

function firstLine(output: string): string {
  const line = output.split('\n').find((l) => l.trim() !== '');
  return line === undefined ? '' : clip(line.trim(), 200);
}
