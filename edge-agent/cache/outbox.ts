import type Database from 'better-sqlite3';
import type { ReportItem } from '../../shared/protocol/frames.js';

export type OutboxKind = ReportItem['kind'];

/** The age budget is checked every this many events (and by the agent's node reporter). */
const AGE_CHECK_EVERY = 500;

export interface OutboxOptions {
  /** Events kept while the hub is unreachable; the oldest beyond this are dropped and counted. Default 10 000. */
  maxEvents?: number;
  /** Events older than this are dropped and counted, ms. Default 7 days. */
  maxEventAgeMs?: number;
  now?: () => number;
}

/**
 * Everything the agent sends up is first written here with a sequence number, then sent in
 * batches; rows are deleted only after the hub acknowledged having stored them.
 * Budget policy: status rows are coalesced per key (only the newest status of an object is worth
 * sending) and never dropped; events are kept in order up to a count and an age budget, oldest
 * dropped first, and every drop is counted (persisted, reported to the hub), never silent.
 * AUTOINCREMENT: sequence numbers are never reused, which the hub's de-duplication relies on.
 */
export class Outbox {
  private readonly stmts;
  private readonly maxEvents: number;
  private readonly maxEventAgeMs: number;
  private readonly now: () => number;
  private eventPuts = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly db: Database.Database, options: OutboxOptions = {}) {
    this.maxEvents = options.maxEvents ?? 10_000;
    this.maxEventAgeMs = options.maxEventAgeMs ?? 7 * 24 * 3_600_000;
    this.now = options.now ?? Date.now;
    const fresh = !db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get();
    db.exec(`CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
      coalesce_key TEXT UNIQUE, body TEXT NOT NULL, created_at INTEGER NOT NULL DEFAULT 0)`);
    if (fresh) {
      // The hub de-duplicates events by (node, seq). A cache file that is recreated (corrupt file
      // moved aside, data dir wiped) must not restart at 1, so a new outbox starts at the current
      // time in microseconds: later than any seq an earlier file of this node could have used.
      db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)").run(Date.now() * 1000);
    }
    db.exec('CREATE TABLE IF NOT EXISTS outbox_stats (key TEXT PRIMARY KEY, value INTEGER NOT NULL)');
    this.stmts = {
      addDropped: db.prepare("INSERT INTO outbox_stats (key, value) VALUES ('dropped_events', ?) ON CONFLICT (key) DO UPDATE SET value = value + excluded.value"),
      getDropped: db.prepare<[], { value: number }>("SELECT value FROM outbox_stats WHERE key = 'dropped_events'"),
      deleteKey: db.prepare('DELETE FROM outbox WHERE coalesce_key = ?'),
      insert: db.prepare('INSERT INTO outbox (kind, coalesce_key, body, created_at) VALUES (?, ?, ?, ?)'),
      dropExpiredEvents: db.prepare("DELETE FROM outbox WHERE kind = 'event' AND created_at < ?"),
      batch: db.prepare<[number, number], { seq: number; kind: OutboxKind; body: string }>('SELECT seq, kind, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
      ack: db.prepare('DELETE FROM outbox WHERE seq <= ?'),
      depth: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM outbox'),
      eventCount: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM outbox WHERE kind = 'event'"),
      dropOldestEvents: db.prepare("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind = 'event' ORDER BY seq LIMIT ?)"),
    };
  }

  /** Queues one item durably. With `key`, replaces any queued item of the same key. */
  put(kind: OutboxKind, body: unknown, key?: string): void {
    this.db.transaction(() => {
      if (key !== undefined) this.stmts.deleteKey.run(key);
      const now = this.now();
      this.stmts.insert.run(kind, key ?? null, JSON.stringify(body), now);
      if (kind === 'event') {
        const over = this.stmts.eventCount.get()!.n - this.maxEvents;
        if (over > 0) this.stmts.addDropped.run(this.stmts.dropOldestEvents.run(over).changes);
        if (++this.eventPuts % AGE_CHECK_EVERY === 0) this.dropExpired(now);
      }
    })();
    for (const l of this.listeners) l();
  }

  /** Drops (and counts) events older than the age budget; statuses are never dropped. */
  dropExpired(now = this.now()): number {
    const n = this.stmts.dropExpiredEvents.run(now - this.maxEventAgeMs).changes;
    if (n > 0) this.stmts.addDropped.run(n);
    return n;
  }

  /** The oldest rows after `afterSeq`, as report items. */
  batch(limit: number, afterSeq = 0): ReportItem[] {
    return this.stmts.batch.all(afterSeq, limit).map((r) => ({ seq: r.seq, kind: r.kind, body: JSON.parse(r.body) as never }) as ReportItem);
  }

  /** The hub stored every row up to ackSeq: delete them. */
  ack(ackSeq: number): void {
    this.stmts.ack.run(ackSeq);
  }

  depth(): number {
    return this.stmts.depth.get()!.n;
  }

  /** Events the budget has dropped, ever (kept in the file, reported to the hub in node status). */
  droppedEvents(): number {
    return this.stmts.getDropped.get()?.value ?? 0;
  }

  onPut(listener: () => void): void {
    this.listeners.add(listener);
  }
}
