import type { Database, Statement } from 'better-sqlite3';

/** One row of `runtime_instances`: an instance this node runs or ran, and its last process. */
export interface InstanceRow {
  name: string;
  template_hash: string;
  template_json: string;
  /** Pid of the process that runs; null while none runs. */
  pid: number | null;
  /** Start time of that process (field 22 of /proc/<pid>/stat); null where unknown. */
  start_time: number | null;
  restarts: number;
  started_at: string | null;
  /** JSON of the supervisor's persisted state (status, last exit, crash count). */
  state_json: string;
}

/** The runtime's table in the agent's SQLite database. Statements are prepared once. */
export class RuntimeStateStore {
  private readonly upsertStmt: Statement<[InstanceRow]>;
  private readonly deleteStmt: Statement<[string]>;
  private readonly listStmt: Statement<[], InstanceRow>;

  constructor(db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS runtime_instances (
      name TEXT PRIMARY KEY,
      template_hash TEXT NOT NULL,
      template_json TEXT NOT NULL,
      pid INTEGER,
      start_time INTEGER,
      restarts INTEGER NOT NULL DEFAULT 0,
      started_at TEXT,
      state_json TEXT NOT NULL DEFAULT '{}'
    ) STRICT`);
    this.upsertStmt = db.prepare(`INSERT INTO runtime_instances
        (name, template_hash, template_json, pid, start_time, restarts, started_at, state_json)
      VALUES (@name, @template_hash, @template_json, @pid, @start_time, @restarts, @started_at, @state_json)
      ON CONFLICT(name) DO UPDATE SET template_hash = excluded.template_hash, template_json = excluded.template_json,
        pid = excluded.pid, start_time = excluded.start_time, restarts = excluded.restarts,
        started_at = excluded.started_at, state_json = excluded.state_json`);
    this.deleteStmt = db.prepare('DELETE FROM runtime_instances WHERE name = ?');
    this.listStmt = db.prepare<[], InstanceRow>('SELECT * FROM runtime_instances ORDER BY name');
  }

  list(): InstanceRow[] {
    return this.listStmt.all();
  }

  save(row: InstanceRow): void {
    this.upsertStmt.run(row);
  }

  delete(name: string): void {
    this.deleteStmt.run(name);
  }
}
