import type Database from 'better-sqlite3';
import type { PropertyValue } from '../../shared/api/index.js';
import { openDatabase } from '../store/sqlite-schema.js';

/** One stored telemetry message. `timestamp` is the device's (or the agent's arrival) time. */
export interface TelemetryRow {
  device: string;
  node: string;
  seq: number;
  timestamp: string;
  values: Record<string, PropertyValue>;
  /**
   * Which outbox the seq counts in: the node's uid (a node deleted and joined again under the
   * same name starts a new outbox, whose rows must not be taken for duplicates). Default `node`.
   */
  origin?: string;
}

export interface Retention {
  /** Rows older than this (by their timestamp) are removed, ms. */
  maxAgeMs: number;
  /** At most this many rows are kept per device (the newest). */
  maxCount: number;
}

/** Rows per API page at most. */
export const MAX_PAGE = 10_000;

export const DEFAULT_RETENTION: Retention = { maxAgeMs: 24 * 3_600_000, maxCount: 10_000 };

export interface TelemetryQuery {
  /** Only rows with a timestamp at or after this, epoch ms. */
  sinceMs?: number;
  /** Only rows stored after this row id (a cursor): then the oldest `limit` such rows, else the newest. */
  afterId?: number;
  /** This many rows at most (in order). Default 1000, at most 10 000. */
  limit?: number;
}

/**
 * Device telemetry in the hub's own SQLite file (telemetry.db beside store.db: high-volume rows
 * never go through the object store or its watch history). (node uid, seq) is unique, so a batch
 * re-sent after a lost acknowledgement is stored once.
 */
export class TelemetryStore {
  private readonly db: Database.Database;
  private readonly insertRow: Database.Statement;
  private readonly trimAge: Database.Statement;
  private readonly trimCount: Database.Statement;
  private readonly dropDevice: Database.Statement;
  private readonly listeners = new Set<(device: string) => void>();
  private readonly countRows: Database.Statement;
  /** Rows per device as far as this process knows (loaded on first touch): trims by count only when over. */
  private readonly counts = new Map<string, number>();

  constructor(path: string) {
    this.db = openDatabase(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS telemetry (
      id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL, device TEXT NOT NULL,
      ts INTEGER NOT NULL, timestamp TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (origin, seq));
      CREATE INDEX IF NOT EXISTS telemetry_device_id ON telemetry (device, id);
      CREATE INDEX IF NOT EXISTS telemetry_device_ts ON telemetry (device, ts);`);
    this.insertRow = this.db.prepare('INSERT OR IGNORE INTO telemetry (origin, node, seq, device, ts, timestamp, body) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.trimAge = this.db.prepare('DELETE FROM telemetry WHERE device = ? AND ts < ?');
    this.trimCount = this.db.prepare('DELETE FROM telemetry WHERE device = @device AND id < (SELECT id FROM telemetry WHERE device = @device ORDER BY id DESC LIMIT 1 OFFSET @keep)');
    this.dropDevice = this.db.prepare('DELETE FROM telemetry WHERE device = ?');
    this.countRows = this.db.prepare('SELECT COUNT(*) AS n FROM telemetry WHERE device = ?');
  }

  /**
   * Stores a frame's rows and applies each touched device's retention, in one transaction.
   * Returns how many rows were new and how many were duplicates of stored ones.
   */
  append(rows: readonly TelemetryRow[], retentionOf: (device: string) => Retention, now = Date.now()): { stored: number; duplicates: number } {
    let stored = 0;
    const touched = new Set<string>();
    this.db.transaction(() => {
      for (const r of rows) {
        const ts = Date.parse(r.timestamp);
        const changes = this.insertRow.run(r.origin ?? r.node, r.node, r.seq, r.device, Number.isNaN(ts) ? now : ts, r.timestamp, JSON.stringify(r.values)).changes;
        stored += changes;
        if (changes > 0) {
          if (!this.counts.has(r.device)) this.counts.set(r.device, (this.countRows.get(r.device) as { n: number }).n - changes);
          this.counts.set(r.device, (this.counts.get(r.device) ?? 0) + changes);
          touched.add(r.device);
        }
      }
      for (const device of touched) this.applyRetention(device, retentionOf(device), now);
    })();
    for (const device of touched) for (const l of this.listeners) l(device);
    return { stored, duplicates: rows.length - stored };
  }

  private applyRetention(device: string, retention: Retention, now: number): void {
    let count = this.counts.get(device) ?? 0;
    count -= this.trimAge.run(device, now - retention.maxAgeMs).changes;
    if (count > retention.maxCount) count -= this.trimCount.run({ device, keep: retention.maxCount - 1 }).changes;
    this.counts.set(device, count);
  }

  /** Rows of a device, oldest first, with their ids (for follow mode). */
  list(device: string, query: TelemetryQuery = {}): (TelemetryRow & { id: number })[] {
    return this.select(device, query, Math.max(1, Math.min(query.limit ?? 1000, MAX_PAGE)));
  }

  /**
   * One page forward from a cursor (a row id; 0 = from the oldest): up to `limit` rows with a
   * larger id, oldest first, and whether more follow. Ids only grow (AUTOINCREMENT, never
   * reused), so paging from the last id of each page reads every stored row once, in storage
   * order; rows removed by retention meanwhile are simply not there.
   */
  page(device: string, query: { afterId: number; sinceMs?: number; limit?: number }): { rows: (TelemetryRow & { id: number })[]; more: boolean } {
    const limit = Math.max(1, Math.min(query.limit ?? 1000, MAX_PAGE));
    const rows = this.select(device, query, limit + 1);
    return { rows: rows.slice(0, limit), more: rows.length > limit };
  }

  /** The id of the device's newest row, 0 when it has none. */
  lastId(device: string): number {
    return (this.db.prepare('SELECT MAX(id) AS id FROM telemetry WHERE device = ?').get(device) as { id: number | null }).id ?? 0;
  }

  private select(device: string, query: TelemetryQuery, limit: number): (TelemetryRow & { id: number })[] {
    // Follow mode reads forward from a row id; a plain query takes the newest `limit` rows.
    const inner = query.afterId === undefined ? 'ORDER BY id DESC LIMIT @limit' : 'ORDER BY id LIMIT @limit';
    const rows = this.db
      .prepare(`SELECT * FROM (SELECT id, node, seq, device, timestamp, body FROM telemetry WHERE device = @device AND ts >= @since AND id > @after ${inner}) ORDER BY id`)
      .all({ device, since: query.sinceMs ?? 0, after: query.afterId ?? 0, limit }) as { id: number; node: string; seq: number; device: string; timestamp: string; body: string }[];
    return rows.map((r) => ({ id: r.id, device: r.device, node: r.node, seq: r.seq, timestamp: r.timestamp, values: JSON.parse(r.body) as Record<string, PropertyValue> }));
  }

  count(device?: string): number {
    const row = (device === undefined
      ? this.db.prepare('SELECT COUNT(*) AS n FROM telemetry').get()
      : this.db.prepare('SELECT COUNT(*) AS n FROM telemetry WHERE device = ?').get(device)) as { n: number };
    return row.n;
  }

  /** The devices that have telemetry rows. */
  devices(): string[] {
    return (this.db.prepare('SELECT DISTINCT device FROM telemetry').all() as { device: string }[]).map((r) => r.device);
  }

  /** A deleted device's telemetry goes with it. */
  deleteDevice(device: string): void {
    this.dropDevice.run(device);
    this.counts.delete(device);
  }

  /** Called after each append with every device that got new rows. */
  onAppend(listener: (device: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.db.close();
  }
}
