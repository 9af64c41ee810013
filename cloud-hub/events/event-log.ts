import type Database from 'better-sqlite3';
import { openDatabase } from '../store/sqlite-schema.js';

export interface HubEvent {
  node: string;
  seq: number;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  object: { kind: string; name: string };
  time: string;
  /** Stored once per (node, object, key): a process end reported twice is kept once. */
  key?: string;
}

/**
 * Events reported by agents, kept in a bounded table of the hub's private database. (node, seq)
 * is unique, so an outbox batch re-sent after a lost acknowledgement is stored once.
 */
export class EventLog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly trim: Database.Statement;
  private writesSinceTrim = 0;

  constructor(path: string, private readonly maxEvents = 100_000) {
    this.db = openDatabase(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS events (
      id INTEGER PRIMARY KEY AUTOINCREMENT, node TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
      reason TEXT NOT NULL, message TEXT NOT NULL, object_kind TEXT NOT NULL, object_name TEXT NOT NULL,
      time TEXT NOT NULL, dedupe_key TEXT, UNIQUE (node, seq), UNIQUE (node, object_kind, object_name, dedupe_key))`);
    this.insert = this.db.prepare(`INSERT OR IGNORE INTO events (node, seq, type, reason, message, object_kind, object_name, time, dedupe_key)
      VALUES (@node, @seq, @type, @reason, @message, @kind, @name, @time, @key)`);
    this.trim = this.db.prepare('DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?');
  }

  /** Stores events in one transaction; returns how many were new. */
  append(events: HubEvent[]): number {
    let added = 0;
    this.db.transaction(() => {
      for (const e of events) {
        added += this.insert.run({ node: e.node, seq: e.seq, type: e.type, reason: e.reason, message: e.message, kind: e.object.kind, name: e.object.name, time: e.time, key: e.key ?? null }).changes;
      }
    })();
    this.writesSinceTrim += added;
    if (this.writesSinceTrim > 1000) {
      this.writesSinceTrim = 0;
      this.trim.run(this.maxEvents);
    }
    return added;
  }

  /** Newest last; filtered by node and/or object name. */
  list(filter: { node?: string; objectName?: string; limit?: number } = {}): HubEvent[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: Math.min(filter.limit ?? 500, 5000) };
    if (filter.node) { where.push('node = @node'); params.node = filter.node; }
    if (filter.objectName) { where.push('object_name = @objectName'); params.objectName = filter.objectName; }
    const rows = this.db
      .prepare(`SELECT * FROM (SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit) ORDER BY id`)
      .all(params) as { node: string; seq: number; type: 'Normal' | 'Warning'; reason: string; message: string; object_kind: string; object_name: string; time: string }[];
    return rows.map((r) => ({ node: r.node, seq: r.seq, type: r.type, reason: r.reason, message: r.message, object: { kind: r.object_kind, name: r.object_name }, time: r.time }));
  }

  close(): void {
    this.db.close();
  }
}
