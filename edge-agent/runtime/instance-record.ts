import type { ProcessTemplate } from './types.js';
import type { InstanceStatus } from '../../shared/api/instance.js';
import { succeeded, type ExitInfo } from './restart-policy.js';
import type { InstanceRow } from './runtime-state.js';

// What an instance reports (its status) and records (its row), built from the supervisor's state.

/** The status of an instance in each situation; `restarts` and `templateHash` are always set. */
export interface StatusBase {
  restarts: number;
  templateHash: string;
}

export function pendingStatus(base: StatusBase): InstanceStatus {
  return { phase: 'Pending', ready: false, restarts: base.restarts, templateHash: base.templateHash };
}

export function runningStatus(base: StatusBase, p: { pid: number; startedAt: string }, message?: string): InstanceStatus {
  const status: InstanceStatus = { phase: 'Running', ready: message === undefined, restarts: base.restarts, pid: p.pid, startedAt: p.startedAt, templateHash: base.templateHash };
  if (message !== undefined) status.message = message;
  return status;
}

/** Failed or Succeeded after `exit`; a failed start has no exit code or signal. */
export function exitedStatus(base: StatusBase, exit: ExitInfo, message = exit.message): InstanceStatus {
  const status: InstanceStatus = { phase: succeeded(exit) ? 'Succeeded' : 'Failed', ready: false, restarts: base.restarts };
  if (!exit.failedStart) {
    status.exitCode = exit.code;
    status.signal = exit.signal;
  }
  status.templateHash = base.templateHash;
  status.message = message;
  return status;
}

/** What `state_json` holds besides the row's columns. */
export interface PersistedState {
  lastExit?: ExitInfo | null;
  /** Consecutive short runs: the exponent of the crash-loop back-off. */
  crashes?: number;
  status?: InstanceStatus;
  /**
   * false from the moment a started process's pid is saved until its Started event is in the
   * outbox: an agent killed in between leaves it false, and the next agent reports the start
   * (the hub keeps one Started event per process identity, so a report made twice counts once).
   */
  startReported?: boolean;
}

export function parsePersisted(json: string): PersistedState {
  try {
    const value: unknown = JSON.parse(json);
    return value && typeof value === 'object' ? (value as PersistedState) : {};
  } catch {
    return {};
  }
}

/** The row of an instance: pid and start time of the process that runs, or null while none runs. */
export function toRow(record: {
  name: string;
  template: ProcessTemplate;
  templateHash: string;
  restarts: number;
  proc: { pid: number; startTime: number | null; startedAt: string } | null;
  persisted: PersistedState;
}): InstanceRow {
  const { proc } = record;
  return {
    name: record.name,
    template_hash: record.templateHash,
    // Config values (secrets among them) stay out of the file: see ProcessTemplate.configEnv.
    template_json: JSON.stringify({ ...record.template, configEnv: undefined }),
    pid: proc?.pid ?? null,
    start_time: proc?.startTime ?? null,
    restarts: record.restarts,
    started_at: proc?.startedAt ?? null,
    state_json: JSON.stringify(record.persisted),
  };
}
