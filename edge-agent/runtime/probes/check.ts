/** What one probe attempt found: `message` names the target and the outcome. */
export interface CheckOutcome {
  ok: boolean;
  message: string;
}

/**
 * The attempt could not be made, through no fault of the probed instance (the container engine
 * cannot be reached or answers 5xx): the prober skips it, counting it neither as a success nor as
 * a failure, so that an engine restart never restarts healthy containers.
 */
export class ProbeUnknown extends Error {
  override readonly name = 'ProbeUnknown';
}

/** One kind of probe bound to its target. `label` names it in messages, e.g. "GET http://127.0.0.1:8080/healthz". */
export interface Check {
  label: string;
  /**
   * One attempt. May reject (the prober reports `<label>: <reason>`; ProbeUnknown: skipped); must
   * stop its I/O when `signal` aborts (timeout or stop).
   */
  run(signal: AbortSignal, timeoutMs: number): Promise<CheckOutcome>;
  /**
   * The check enforces `timeoutMs` itself (exec: the command's time, not the engine's, counts) and
   * rejects when it is up; the prober then only aborts it on stop, and bounds it as a safety net.
   */
  selfTimed?: boolean;
}

/** "ECONNREFUSED", or the error's message when it has no code. */
export function describeError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return err instanceof Error ? err.message : String(err);
}

/** A host as it appears in a URL or a "host:port" pair: IPv6 literals in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** At most `max` characters, with an ellipsis when cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
