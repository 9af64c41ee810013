import type { Database } from 'better-sqlite3';
import type { Probe, RestartPolicy } from '../../shared/api/workload.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';

/**
 * What the process runtime runs for one instance: the template's process flattened with the
 * template-wide settings (see flattenProcess), configs already resolved into env and workingDir.
 */
export interface ProcessTemplate {
  command: string;
  args?: string[];
  env?: Record<string, string>;
  /**
   * Variables from EdgeConfigs (envFrom; may hold secrets): given to the process under `env`, and
   * never written to runtime.db (the agent resolves them again from its encrypted cache).
   */
  configEnv?: Record<string, string>;
  workingDir?: string;
  /** Default Always. */
  restartPolicy?: RestartPolicy;
  /** Seconds between SIGTERM and SIGKILL when an instance is stopped. Default 10. */
  terminationGracePeriodSeconds?: number;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
}

/** One instance the node must run: its name (unique on the node), template and template hash. */
export interface DesiredInstance {
  name: string;
  template: ProcessTemplate;
  /** Hash of `template`; a change replaces the running process. */
  templateHash: string;
  /**
   * Keep what runs for this name if it runs this templateHash, with the template it has; start
   * nothing new. For an instance whose config cannot be resolved now (deleted, or not readable
   * after a restart): a running instance is never stopped for that.
   */
  keep?: boolean;
}

/** Something that happened to an instance, for the agent's event outbox. */
export interface RuntimeEvent {
  type: 'Normal' | 'Warning';
  /** PascalCase: Started, Exited, FailedStart, BackOff, Adopted, Stopped, Killed, Replaced, Removed, LogRotated, Unhealthy (a probe failed). */
  reason: string;
  message: string;
  instance: string;
  /**
   * For the start and the end of one process: its pid and start time. The agent turns these into
   * an event key (`start:<pid>@<time>`, `end:<pid>@<time>`; the time because pids get reused)
   * that the hub stores once, because the end of a process can be
   * reported twice when the agent is killed between queueing the event and updating its records.
   */
  process?: { pid: number; startedAt: string; edge: 'start' | 'end' };
}

export interface ProcessRuntimeOptions {
  /** Directory of instance logs: `<logDir>/<instance>/current.log` plus rotated `current.log.N`. */
  logDir: string;
  /**
   * Parent of the default working directories: an instance without `workingDir` runs in
   * `<workDir>/<instance>` (created on start). Default `<dirname(logDir)>/instances` (the agent passes `<data>/work`).
   */
  workDir?: string;
  /** Bytes of a log file before it is rotated; default 10 MiB. */
  logMaxBytes?: number;
  /** Rotated log files kept per instance (`current.log.1` .. `.N`); default 3. */
  logFiles?: number;
  /**
   * Crash-loop backoff: the n-th consecutive restart waits min(maxMs, initialMs * 2^(n-1)).
   * The count resets when a process ran at least `resetAfterMs`. Defaults 1 s, 5 min, 60 s.
   */
  restartBackoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
  /** Liveness poll of adopted processes and log-size check, in ms; default 1000. */
  pollIntervalMs?: number;
  /** Environment given to every instance underneath its template env (the agent sets OUTPOST_NODE, OUTPOST_UNIT; the runtime adds OUTPOST_INSTANCE). */
  baseEnv?: Record<string, string>;
  /**
   * PATH given to an instance when neither `baseEnv` nor its template env sets one, so that a bare
   * command name such as `sleep` resolves. Default: the agent's own PATH. Nothing else of the
   * agent's environment reaches an instance (it may hold the node credential).
   */
  defaultPath?: string;
}

export interface ProcessRuntimeDeps {
  /** The agent's SQLite database; the runtime owns the `runtime_instances` table. */
  db: Database;
  log: Logger;
  clock?: Clock;
}

/** Options with every default applied. */
export interface RuntimeSettings {
  logDir: string;
  workDir: string;
  logMaxBytes: number;
  logFiles: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  backoffResetAfterMs: number;
  pollIntervalMs: number;
  baseEnv: Record<string, string>;
  defaultPath: string | undefined;
}
