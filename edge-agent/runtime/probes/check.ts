/** What one probe attempt found: `message` names the target and the outcome. */
export interface CheckOutcome {
  ok: boolean;
  message: string;
}

/** One kind of probe bound to its target. `label` names it in messages, e.g. "GET http://127.0.0.1:8080/healthz". */
export interface Check {
  label: string;
  /**
   * One attempt. May reject (the prober reports `<label>: <reason>`); must stop its I/O when
   * `signal` aborts (timeout or stop). `timeoutMs` is for checks that cannot take a signal (exec).
   */
  run(signal: AbortSignal, timeoutMs: number): Promise<CheckOutcome>;
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
