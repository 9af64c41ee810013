import Database from 'better-sqlite3';

export type { Database } from 'better-sqlite3';

/** Options of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** How long a statement waits for a lock held by another connection, in ms. Default 5000. */
  busyTimeoutMs?: number;
}

/**
 * Opens a SQLite file (or ':memory:') the way the hub needs it.
 *
 * - `journal_mode=WAL`: readers never block the writer, and a commit is one append to the WAL.
 * - `synchronous=FULL`: in WAL mode, NORMAL only fsyncs at checkpoints, so the last commits can be
 *   lost on power loss or an OS crash (they survive a process crash). The hub acknowledges a write
 *   to the operator and agents act on it, so an acknowledged revision must never disappear:
 *   FULL fsyncs the WAL on every commit. This costs one fsync per write, which the store keeps
 *   cheap by making every write exactly one short transaction.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): Database.Database {
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The schema version this code writes, kept in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 1;

/**
 * `objects` holds the current state; `history` one row per revision (the watch log, trimmed by
 * compaction); `meta` the revision counter and the compacted revision. The counter lives in
 * `meta`, not in MAX(history.revision), so it never goes back when history or objects are removed.
 */
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS objects (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  revision INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  revision INTEGER PRIMARY KEY,
  type TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
`;

/** Creates or upgrades the store schema; refuses a file written by a newer Outpost. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`store schema version ${version} is newer than this hub supports (${SCHEMA_VERSION}); upgrade Outpost`);
  }
  db.transaction(() => {
    db.exec(SCHEMA_V1);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
