import type { Database, Statement } from 'better-sqlite3';

/** What the engine does not keep for us: restarts made by the runtime, and the crash-loop exponent. */
export interface ContainerCounters {
  restarts: number;
  crashes: number;
}

/**
 * The `runtime_containers` table: counters per instance, so that an agent restart neither
 * resets the restart count the hub shows nor the crash-loop back-off. Which containers run is
 * never stored here: the engine's labels are the truth for that.
 */
export class ContainerCounterStore {
  private readonly upsertStmt: Statement<[{ name: string; restarts: number; crashes: number }]>;
  private readonly deleteStmt: Statement<[string]>;
  private readonly getStmt: Statement<[string], ContainerCounters>;

  constructor(db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS runtime_containers (
      name TEXT PRIMARY KEY,
      restarts INTEGER NOT NULL DEFAULT 0,
      crashes INTEGER NOT NULL DEFAULT 0
    ) STRICT`);
    this.upsertStmt = db.prepare(`INSERT INTO runtime_containers (name, restarts, crashes) VALUES (@name, @restarts, @crashes)
      ON CONFLICT(name) DO UPDATE SET restarts = excluded.restarts, crashes = excluded.crashes`);
    this.deleteStmt = db.prepare('DELETE FROM runtime_containers WHERE name = ?');
    this.getStmt = db.prepare<[string], ContainerCounters>('SELECT restarts, crashes FROM runtime_containers WHERE name = ?');
  }

  get(name: string): ContainerCounters {
    return this.getStmt.get(name) ?? { restarts: 0, crashes: 0 };
  }

  save(name: string, counters: ContainerCounters): void {
    this.upsertStmt.run({ name, ...counters });
  }

  delete(name: string): void {
    this.deleteStmt.run(name);
  }
}
