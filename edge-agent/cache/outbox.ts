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
  /** Telemetry rows kept while the hub is unreachable; the oldest beyond this are dropped and counted. Default 1 000 000. */
  maxTelemetry?: number;
  /** Telemetry rows older than this are dropped and counted, ms. Default 7 days. */
  maxTelemetryAgeMs?: number;
  /** Telemetry bytes (JSON bodies) kept; the oldest beyond this are dropped and counted. Default 512 MiB. */
  maxTelemetryBytes?: number;
  now?: () => number;
}

/** One row of a batch put. `merge` (with `key`) computes the body from the queued row of that key, if any. */
export interface OutboxPut {
  kind: OutboxKind;
  body: unknown;
  key?: string;
  merge?: (queued: unknown) => unknown;
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
  private readonly maxTelemetry: number;
  private readonly maxTelemetryAgeMs: number;
  private readonly maxTelemetryBytes: number;
  private telemetryRows = 0;
  private telemetryBytesQueued = 0;
  private telemetryPuts = 0;

  constructor(private readonly db: Database.Database, options: OutboxOptions = {}) {
    this.maxEvents = options.maxEvents ?? 10_000;
    this.maxEventAgeMs = options.maxEventAgeMs ?? 7 * 24 * 3_600_000;
    this.now = options.now ?? Date.now;
    this.maxTelemetry = options.maxTelemetry ?? 1_000_000;
    this.maxTelemetryAgeMs = options.maxTelemetryAgeMs ?? 7 * 24 * 3_600_000;
    this.maxTelemetryBytes = options.maxTelemetryBytes ?? 512 * 1024 * 1024;
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
      getByKey: db.prepare<[string], { body: string }>('SELECT body FROM outbox WHERE coalesce_key = ?'),
      addDroppedTelemetry: db.prepare("INSERT INTO outbox_stats (key, value) VALUES ('dropped_telemetry', ?) ON CONFLICT (key) DO UPDATE SET value = value + excluded.value"),
      getDroppedTelemetry: db.prepare<[], { value: number }>("SELECT value FROM outbox_stats WHERE key = 'dropped_telemetry'"),
      telemetryStats: db.prepare<[number], { n: number; bytes: number | null }>("SELECT COUNT(*) AS n, SUM(length(body)) AS bytes FROM outbox WHERE kind = 'telemetry' AND seq <= ?"),
      dropOldestTelemetry: db.prepare<[number], { bytes: number }>("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE kind = 'telemetry' ORDER BY seq LIMIT ?) RETURNING length(body) AS bytes"),
      dropExpiredTelemetry: db.prepare<[number], { bytes: number }>("DELETE FROM outbox WHERE kind = 'telemetry' AND created_at < ? RETURNING length(body) AS bytes"),
    };
    const t = this.stmts.telemetryStats.get(Number.MAX_SAFE_INTEGER)!;
    this.telemetryRows = t.n;
    this.telemetryBytesQueued = t.bytes ?? 0;
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

  /**
   * Queues many rows in one transaction (one fsync): the group commit of device telemetry.
   * Rows get consecutive seqs in array order; the telemetry budget is applied once, at the end.
   */
  putBatch(items: readonly OutboxPut[]): void {
    if (items.length === 0) return;
    this.db.transaction(() => {
      const now = this.now();
      let telemetry = 0;
      for (const item of items) {
        let body = item.body;
        if (item.key !== undefined) {
          if (item.merge) {
            const queued = this.stmts.getByKey.get(item.key);
            body = item.merge(queued ? JSON.parse(queued.body) : undefined);
          }
          this.stmts.deleteKey.run(item.key);
        }
        const json = JSON.stringify(body);
        this.stmts.insert.run(item.kind, item.key ?? null, json, now);
        if (item.kind === 'telemetry') {
          telemetry++;
          this.telemetryRows++;
          this.telemetryBytesQueued += Buffer.byteLength(json);
        }
      }
      if (telemetry > 0) {
        this.enforceTelemetryBudget();
        const before = this.telemetryPuts;
        this.telemetryPuts += telemetry;
        if (Math.floor(before / AGE_CHECK_EVERY) !== Math.floor(this.telemetryPuts / AGE_CHECK_EVERY)) this.dropExpiredTelemetry(now);
      }
    })();
    for (const l of this.listeners) l();
  }

  private enforceTelemetryBudget(): void {
    let dropped = 0;
    while (this.telemetryRows > this.maxTelemetry || (this.telemetryBytesQueued > this.maxTelemetryBytes && this.telemetryRows > 0)) {
      const over = Math.max(1, this.telemetryRows - this.maxTelemetry, Math.ceil((this.telemetryRows * (this.telemetryBytesQueued - this.maxTelemetryBytes)) / Math.max(1, this.telemetryBytesQueued)));
      const rows = this.stmts.dropOldestTelemetry.all(Math.min(over, this.telemetryRows));
      if (rows.length === 0) break;
      dropped += rows.length;
      this.telemetryRows -= rows.length;
      for (const r of rows) this.telemetryBytesQueued -= r.bytes;
    }
    if (dropped > 0) this.stmts.addDroppedTelemetry.run(dropped);
  }

  private dropExpiredTelemetry(now: number): number {
    const rows = this.stmts.dropExpiredTelemetry.all(now - this.maxTelemetryAgeMs);
    if (rows.length > 0) {
      this.telemetryRows -= rows.length;
      for (const r of rows) this.telemetryBytesQueued -= r.bytes;
      this.stmts.addDroppedTelemetry.run(rows.length);
    }
    return rows.length;
  }

  /** Drops (and counts) events and telemetry older than their age budgets; statuses are never dropped. */
  dropExpired(now = this.now()): number {
    const n = this.stmts.dropExpiredEvents.run(now - this.maxEventAgeMs).changes;
    if (n > 0) this.stmts.addDropped.run(n);
    return n + (this.telemetryRows > 0 ? this.dropExpiredTelemetry(now) : 0);
  }

  /** The oldest rows after `afterSeq`, as report items. */
  batch(limit: number, afterSeq = 0): ReportItem[] {
    return this.stmts.batch.all(afterSeq, limit).map((r) => ({ seq: r.seq, kind: r.kind, body: JSON.parse(r.body) as never }) as ReportItem);
  }

  /** The hub stored every row up to ackSeq: delete them. */
  ack(ackSeq: number): void {
    this.db.transaction(() => {
      if (this.telemetryRows > 0) {
        const t = this.stmts.telemetryStats.get(ackSeq)!;
        this.telemetryRows -= t.n;
        this.telemetryBytesQueued -= t.bytes ?? 0;
      }
      this.stmts.ack.run(ackSeq);
    })();
  }

  /** Telemetry rows waiting to be sent, and their JSON bytes. */
  telemetryQueued(): { rows: number; bytes: number } {
    return { rows: this.telemetryRows, bytes: this.telemetryBytesQueued };
  }

  /** Telemetry rows the budget has dropped, ever (kept in the file). */
  droppedTelemetry(): number {
    return this.stmts.getDroppedTelemetry.get()?.value ?? 0;
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
