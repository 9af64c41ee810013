import type Database from 'better-sqlite3';
import type { RegistryRecord, ServiceInstance } from './records.js';

/**
 * This node's own registry records in <data>/registry.db, and its incarnation.
 *
 * Only own records are persisted: replicated ones come back from peers through anti-entropy, and
 * holding them across a restart could only serve stale answers. Own tombstones are kept so that a
 * peer still holding an older live copy is answered with the deletion after a restart.
 */
export class OwnRecordStore {
  private readonly upsert: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(private readonly db: Database.Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS registry_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS own_records (
        key TEXT PRIMARY KEY,
        incarnation INTEGER NOT NULL,
        counter INTEGER NOT NULL,
        instance TEXT
      );
    `);
    this.upsert = db.prepare('INSERT INTO own_records (key, incarnation, counter, instance) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET incarnation = excluded.incarnation, counter = excluded.counter, instance = excluded.instance');
    this.remove = db.prepare('DELETE FROM own_records WHERE key = ?');
  }

  /** Increments and returns the persisted incarnation (1 on the first start); committed before it is used. */
  nextIncarnation(atLeast = 0): number {
    return this.db.transaction(() => {
      const row = this.db.prepare("SELECT value FROM registry_meta WHERE key = 'incarnation'").get() as { value: number } | undefined;
      const next = Math.max((row?.value ?? 0) + 1, atLeast);
      this.db.prepare("INSERT INTO registry_meta (key, value) VALUES ('incarnation', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(next);
      return next;
    })();
  }

  /**
   * The floor of change indexes: every index this node has handed out is below the stored value.
   * Returns the stored floor (0 at first) and stores `floor + step`, so the caller may use indexes
   * up to that before it must call again.
   */
  reserveIndexes(step: number): { from: number; upTo: number } {
    return this.db.transaction(() => {
      const row = this.db.prepare("SELECT value FROM registry_meta WHERE key = 'index_floor'").get() as { value: number } | undefined;
      const from = row?.value ?? 0;
      this.db.prepare("INSERT INTO registry_meta (key, value) VALUES ('index_floor', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(from + step);
      return { from, upTo: from + step };
    })();
  }

  load(origin: string): RegistryRecord[] {
    const rows = this.db.prepare('SELECT key, incarnation, counter, instance FROM own_records ORDER BY key').all() as Array<{ key: string; incarnation: number; counter: number; instance: string | null }>;
    return rows.map((r) => ({
      key: r.key,
      origin,
      version: { incarnation: r.incarnation, counter: r.counter },
      ...(r.instance === null ? {} : { instance: JSON.parse(r.instance) as ServiceInstance }),
    }));
  }

  /** Writes records in one transaction (a restart's re-announcement is one commit). */
  save(records: readonly RegistryRecord[]): void {
    this.db.transaction(() => {
      for (const r of records) this.upsert.run(r.key, r.version.incarnation, r.version.counter, r.instance ? JSON.stringify(r.instance) : null);
    })();
  }

  forget(keys: readonly string[]): void {
    this.db.transaction(() => {
      for (const k of keys) this.remove.run(k);
    })();
  }
}
