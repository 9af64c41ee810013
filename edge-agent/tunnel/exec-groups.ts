import type { Database, Statement } from 'better-sqlite3';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { checkProcess, readStartTime } from '../runtime/proc-stat.js';
import { killGroupLeftovers, terminateGroup } from '../runtime/terminate.js';

/** One exec'd host command that runs: the leader of its own process group, and its start time. */
export interface ExecGroupRow {
  pid: number;
  /** Field 22 of /proc/<pid>/stat; null where unknown (no /proc). */
  start_time: number | null;
  instance: string;
  started_at: string;
}

/**
 * The process groups of running `outpost exec` commands, in runtime.db (beside the instances'
 * pids): a command leads its own group and outlives a SIGKILLed agent, so the next agent finds
 * and ends it (README "outpost exec"). A row is written before the exec is reported started and
 * deleted when the command ended.
 */
export class ExecGroupStore {
  private readonly insertStmt: Statement<[ExecGroupRow]>;
  private readonly deleteStmt: Statement<[number, number | null]>;
  private readonly listStmt: Statement<[], ExecGroupRow>;

  constructor(db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS tunnel_exec_groups (
      pid INTEGER PRIMARY KEY,
      start_time INTEGER,
      instance TEXT NOT NULL,
      started_at TEXT NOT NULL
    ) STRICT`);
    this.insertStmt = db.prepare('INSERT OR REPLACE INTO tunnel_exec_groups (pid, start_time, instance, started_at) VALUES (@pid, @start_time, @instance, @started_at)');
    // By pid AND start time: a later exec that got the same pid keeps its row.
    this.deleteStmt = db.prepare('DELETE FROM tunnel_exec_groups WHERE pid = ? AND start_time IS ?');
    this.listStmt = db.prepare<[], ExecGroupRow>('SELECT * FROM tunnel_exec_groups ORDER BY pid');
  }

  /** Records the group led by `pid` (read its start time now, while it surely runs); returns the row. */
  record(pid: number, instance: string): ExecGroupRow {
    const row = { pid, start_time: readStartTime(pid), instance, started_at: new Date().toISOString() };
    this.insertStmt.run(row);
    return row;
  }

  forget(row: Pick<ExecGroupRow, 'pid' | 'start_time'>): void {
    this.deleteStmt.run(row.pid, row.start_time);
  }

  list(): ExecGroupRow[] {
    return this.listStmt.all();
  }
}

export interface ReapExecGroupsDeps {
  store: ExecGroupStore;
  log: Logger;
  clock: Clock;
  procFs: boolean;
  /** Aborts waiting (agent stopping); the rows of groups not yet handled stay for the next start. */
  signal: AbortSignal;
}

/**
 * At agent start: ends every exec group an earlier agent recorded. A leader that still has its
 * recorded start time gets SIGTERM to its group, then SIGKILL after `graceMs`. A leader that is
 * gone may have left members (a pid is not reused while a group of that id has members): they
 * get SIGKILL. A pid now used by another process is left alone. Each handled row is deleted.
 */
export async function reapExecGroups(deps: ReapExecGroupsDeps, options: { graceMs: number }): Promise<number> {
  let ended = 0;
  await Promise.all(deps.store.list().map(async (row) => {
    const liveness = checkProcess(row.pid, row.start_time, deps.procFs);
    if (liveness === 'alive') {
      const outcome = await terminateGroup({
        pid: row.pid, leaderAlive: () => checkProcess(row.pid, row.start_time, deps.procFs) === 'alive',
        graceMs: options.graceMs, clock: deps.clock, procFs: deps.procFs, signal: deps.signal,
      });
      if (outcome === 'aborted') return;
      ended++;
      deps.log.warn({ pid: row.pid, instance: row.instance, startedAt: row.started_at, outcome }, 'ended an exec\'d command left running by the previous agent');
    } else if (liveness === 'gone') killGroupLeftovers(row.pid);
    deps.store.forget(row);
  }));
  return ended;
}

/**
 * The agent component that ends the previous agent's exec'd commands, in the background so that
 * instances start without waiting for their grace period; stop() aborts and awaits it.
 */
export class ExecLeftovers {
  readonly name = 'exec-leftovers';
  private readonly abort = new AbortController();
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: Omit<ReapExecGroupsDeps, 'signal'>, private readonly options: { graceMs: number }) {}

  async start(): Promise<void> {
    this.running = reapExecGroups({ ...this.deps, signal: this.abort.signal }, this.options).catch((err: unknown) => {
      this.deps.log.error({ err }, 'cannot end the exec\'d commands left by the previous agent');
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}
