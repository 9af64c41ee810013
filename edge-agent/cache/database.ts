import Database from 'better-sqlite3';
import { existsSync, renameSync } from 'node:fs';
import type { Logger } from '../../shared/logger.js';

/**
 * Opens the agent's SQLite file (desired-state cache, outbox, runtime records).
 *
 * Durability: WAL with synchronous=FULL. The agent acknowledges a sync batch and the hub deletes
 * nothing on the agent's word unless the commit is on disk, so a power cut right after an ack
 * must not lose the batch; with NORMAL, WAL commits can roll back on power loss. FULL costs one
 * fsync per transaction, which batching keeps cheap.
 *
 * A file that SQLite cannot read (disk corruption, truncated copy) is moved aside, never deleted,
 * and the agent starts with an empty cache that the hub refills on connect.
 */
export interface OpenedDatabase {
  db: Database.Database;
  /** Set when the file was unreadable and moved aside: where it went and why. */
  quarantined?: { movedTo: string; error: string };
}

export function openAgentDatabase(path: string, log: Logger): OpenedDatabase {
  try {
    return { db: openChecked(path) };
  } catch (err) {
    if (!existsSync(path)) throw err;
    const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    log.error({ err, path, movedTo: aside }, 'agent cache file is unreadable; moved aside, starting with an empty cache');
    renameSync(path, aside);
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    return { db: openChecked(path), quarantined: { movedTo: aside, error: (err as Error).message } };
  }
}

function openChecked(path: string): Database.Database {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
