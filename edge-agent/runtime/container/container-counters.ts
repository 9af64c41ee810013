import type { Database, Statement } from 'better-sqlite3';

/** What the engine does not keep for us: restarts made by the runtime, and the crash-loop exponent. */
export interface ContainerCounters {
  restarts: number;
  crashes: number;
  /**
   * The container the agent asked the engine to start and whose Started event may not be in the
   * outbox yet (set before the start, cleared once the event is): an agent killed in between
   * leaves it, and the next one reports that start when it adopts the container.
   */
  unreportedStart?: string;
}

/**
 * The `runtime_containers` table: counters per instance, so that an agent restart neither
 * resets the restart count the hub shows nor the crash-loop back-off. Which containers run is
 * never stored here: the engine's labels are the truth for that.
 */
export class ContainerCounterStore {
  private readonly upsertStmt: Statement<[{ name: string; restarts: number; crashes: number; unreported: string | null }]>;
  private readonly deleteStmt: Statement<[string]>;
  private readonly getStmt: Statement<[string], { restarts: number; crashes: number; unreported: string | null }>;

  constructor(db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS runtime_containers (
      name TEXT PRIMARY KEY,
      restarts INTEGER NOT NULL DEFAULT 0,
      crashes INTEGER NOT NULL DEFAULT 0
    ) STRICT`);
    // Added after the table: a runtime.db written by an older agent gets the column here.
    const columns = db.prepare<[], { name: string }>('PRAGMA table_info(runtime_containers)').all().map((c) => c.name);
    if (!columns.includes('unreported_start')) db.exec('ALTER TABLE runtime_containers ADD COLUMN unreported_start TEXT');
    this.upsertStmt = db.prepare(`INSERT INTO runtime_containers (name, restarts, crashes, unreported_start) VALUES (@name, @restarts, @crashes, @unreported)
      ON CONFLICT(name) DO UPDATE SET restarts = excluded.restarts, crashes = excluded.crashes, unreported_start = excluded.unreported_start`);
    this.deleteStmt = db.prepare('DELETE FROM runtime_containers WHERE name = ?');
    this.getStmt = db.prepare('SELECT restarts, crashes, unreported_start AS unreported FROM runtime_containers WHERE name = ?');
  }

  get(name: string): ContainerCounters {
    const row = this.getStmt.get(name);
    if (!row) return { restarts: 0, crashes: 0 };
    return { restarts: row.restarts, crashes: row.crashes, ...(row.unreported ? { unreportedStart: row.unreported } : {}) };
  }

  save(name: string, counters: ContainerCounters): void {
    this.upsertStmt.run({ name, restarts: counters.restarts, crashes: counters.crashes, unreported: counters.unreportedStart ?? null });
  }

  delete(name: string): void {
    this.deleteStmt.run(name);
  }
}
