import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** pino level; default info. */
  level?: string;
  /** Process name stamped on every line (`hub`, `agent`). */
  name: string;
  destination?: DestinationStream;
}

/** Paths that must never reach a log line. */
export const REDACT_PATHS = [
  'token', 'credential', 'secret', 'password', 'authorization',
  '*.token', '*.credential', '*.secret', '*.password', '*.authorization',
  'req.headers.authorization',
  // EdgeConfig secret values, wherever an object is logged whole (an object, a frame, a list).
  'secretData', '*.secretData', '*.*.secretData', '*.*.*.secretData', '*.*.*.*.secretData',
];

/** The one root logger of a process; components take `log.child({ component })`. */
export function createLogger(options: LoggerOptions): Logger {
  const opts = { name: options.name, level: options.level ?? 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** A logger that discards everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
