import type Database from 'better-sqlite3';
import { openDatabase } from '../store/sqlite-schema.js';

/** One tunnel stream opened (or refused) through the hub: who, what, when. */
export interface AuditEvent {
  time: string;
  /** The operator identity (the admin token is one identity: "admin"). */
  user: string;
  /** Where the request came from (remote address). */
  source: string;
  action: 'logs' | 'exec' | 'port-forward' | 'http';
  app: string;
  instance: string;
  node: string;
  /** What inside the instance: the command, the port, the HTTP path. */
  detail: string;
  /** 'opened', or the refusal's error code. */
  outcome: string;
}

/** Audit events of the tunnel in the hub's private database, bounded (oldest trimmed). */
export class AuditLog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly trim: Database.Statement;
  private writes = 0;

  constructor(path: string, private readonly maxEvents = 100_000) {
    this.db = openDatabase(path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS audit (
      id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, user TEXT NOT NULL, source TEXT NOT NULL, action TEXT NOT NULL,
      app TEXT NOT NULL, instance TEXT NOT NULL, node TEXT NOT NULL, detail TEXT NOT NULL, outcome TEXT NOT NULL)`);
    this.insert = this.db.prepare('INSERT INTO audit (time, user, source, action, app, instance, node, detail, outcome) VALUES (@time, @user, @source, @action, @app, @instance, @node, @detail, @outcome)');
    this.trim = this.db.prepare('DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?');
  }

  append(e: AuditEvent): void {
    this.insert.run({ ...e, detail: e.detail.slice(0, 1000) });
    if (++this.writes % 1000 === 0) this.trim.run(this.maxEvents);
  }

  /** Newest last. */
  list(filter: { app?: string; node?: string; limit?: number } = {}): AuditEvent[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: Math.min(filter.limit ?? 500, 5000) };
    if (filter.app) { where.push('app = @app'); params.app = filter.app; }
    if (filter.node) { where.push('node = @node'); params.node = filter.node; }
    return this.db.prepare(`SELECT time, user, source, action, app, instance, node, detail, outcome FROM (SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit) ORDER BY id`).all(params) as AuditEvent[];
  }

  close(): void {
    this.db.close();
  }
}
