import { randomUUID } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Logger } from '../../shared/logger.js';
import { validateObject, type AnyObject, type KindName } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import { deepEqual } from '../../shared/hash.js';
import { migrate, openDatabase, type Database } from './sqlite-schema.js';
import { Watchers, deepFreeze } from './watchers.js';
import { WalSync } from './wal-sync.js';
import { matchesListOptions } from './list-filter.js';
import type { ListOptions, ListResult, Store, WatchEvent, WatchEventType, WatchOptions, WriteOptions } from './store.js';

export { openDatabase } from './sqlite-schema.js';

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** SQLite file path, or ':memory:' (tests). */
  path: string;
  /** History events kept for watch resume; older ones are compacted away. Default 100 000. */
  historyLimit?: number;
  /** Compact inside every Nth write. Default 1000. */
  compactEvery?: number;
  /** Where a throwing watch subscriber is reported. Default: not reported. */
  log?: Logger;
}

interface ObjectRow { revision: number; json: string }
interface HistoryRow { revision: number; type: WatchEventType; kind: string; json: string }

/**
 * The hub's embedded store: one SQLite file, one writer (this process). Every write is one
 * immediate transaction (object row + history row + revision bump); watchers are called
 * synchronously after the commit, in revision order.
 *
 * Objects handed to watchers are deep-frozen and shared between them (as in an informer cache):
 * copy before changing one. Objects returned by get/list/create/update are the caller's own.
 */
export class SqliteStore implements Store {
  private readonly db: Database;
  private readonly historyLimit: number;
  private readonly compactEvery: number;
  private readonly watchers: Watchers;
  private writesSinceCompaction = 0;
  private closed = false;
  /** fsyncs the WAL off the event loop (file databases); undefined for ':memory:'. */
  private readonly wal: WalSync | undefined;
  private readonly log: Logger | undefined;

  private readonly stmt: {
    get: Statement<[string, string], ObjectRow>;
    list: Statement<[string], ObjectRow>;
    put: Statement<[string, string, number, string]>;
    remove: Statement<[string, string]>;
    bump: Statement<[], { value: number }>;
    meta: Statement<[string], { value: number }>;
    setMeta: Statement<[number, string]>;
    append: Statement<[number, WatchEventType, string, string, string]>;
    history: Statement<[number, number], HistoryRow>;
    trim: Statement<[number]>;
  };

  private constructor(db: Database, options: SqliteStoreOptions) {
    this.db = db;
    this.historyLimit = options.historyLimit ?? 100_000;
    this.compactEvery = options.compactEvery ?? 1000;
    this.log = options.log;
    if (options.path !== ':memory:' && options.path !== '' && db.pragma('journal_mode', { simple: true }) === 'wal') {
      // Commits append to the WAL; write() fsyncs it on the thread pool before anyone sees them (see WalSync).
      db.pragma('synchronous = NORMAL');
      this.wal = new WalSync(options.path);
    }
    this.stmt = {
      get: db.prepare('SELECT revision, json FROM objects WHERE kind = ? AND name = ?'),
      list: db.prepare('SELECT revision, json FROM objects WHERE kind = ? ORDER BY name'),
      put: db.prepare('INSERT OR REPLACE INTO objects (kind, name, revision, json) VALUES (?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM objects WHERE kind = ? AND name = ?'),
      bump: db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value"),
      meta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('UPDATE meta SET value = ? WHERE key = ?'),
      append: db.prepare('INSERT INTO history (revision, type, kind, name, json) VALUES (?, ?, ?, ?, ?)'),
      history: db.prepare('SELECT revision, type, kind, json FROM history WHERE revision > ? ORDER BY revision LIMIT ?'),
      trim: db.prepare('DELETE FROM history WHERE revision <= ?'),
    };
    this.watchers = new Watchers({
      log: options.log,
      readBacklog: (after, limit) =>
        this.stmt.history.all(after, limit).map((row) => ({
          revision: row.revision,
          kind: row.kind,
          load: () => ({ type: row.type, object: deepFreeze(parse(row.json)), revision: row.revision }),
        })),
    });
  }

  /** Opens (creating or upgrading) the store file. */
  static open(options: SqliteStoreOptions): SqliteStore {
    for (const [key, min] of [['historyLimit', 0], ['compactEvery', 1]] as const) {
      const v = options[key];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) {
        throw new OutpostError('BAD_REQUEST', `SqliteStore: ${key} must be an integer >= ${min}, got ${v}`);
      }
    }
    const db = openDatabase(options.path);
    try {
      migrate(db);
      return new SqliteStore(db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  async get(kind: KindName, name: string): Promise<AnyObject | undefined> {
    this.assertOpen();
    const row = this.stmt.get.get(kind, name);
    return row ? parse(row.json) : undefined;
  }

  async list(kind: KindName, options: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    // One read transaction: the items and the revision come from the same snapshot.
    return this.db.transaction(() => {
      const items: AnyObject[] = [];
      for (const row of this.stmt.list.iterate(kind)) {
        const obj = parse(row.json);
        if (matchesListOptions(obj, options)) items.push(obj);
      }
      return { items, revision: this.metaValue('revision') };
    }).deferred();
  }

  async create(object: AnyObject): Promise<AnyObject> {
    this.assertOpen();
    const input = validateObject(object);
    const kind = input.kind;
    const name = input.metadata.name;
    return this.write(() => {
      if (this.stmt.get.get(kind, name)) throw new OutpostError('ALREADY_EXISTS', `${kind} "${name}" already exists`);
      const revision = this.nextRevision();
      const { labels, annotations } = input.metadata;
      const stored: AnyObject = {
        apiVersion: input.apiVersion,
        kind,
        metadata: {
          name,
          ...(labels !== undefined && { labels }),
          ...(annotations !== undefined && { annotations }),
          uid: randomUUID(),
          resourceVersion: String(revision),
          generation: 1,
          creationTimestamp: new Date().toISOString(),
        },
        ...('spec' in input && { spec: input.spec }),
        ...(input.status !== undefined && { status: input.status }),
      };
      return this.commit('ADDED', stored, revision);
    });
  }

  async update(object: AnyObject, options: WriteOptions = {}): Promise<AnyObject> {
    this.assertOpen();
    const input = validateObject(object);
    const kind = input.kind;
    const name = input.metadata.name;
    return this.write(() => {
      const current = this.current(kind, name, [options.resourceVersion, input.metadata.resourceVersion]);
      const specChanged = !deepEqual(input.spec, current.spec);
      const labels = input.metadata.labels;
      const annotations = input.metadata.annotations;
      if (!specChanged && deepEqual(labels ?? {}, current.metadata.labels ?? {}) && deepEqual(annotations ?? {}, current.metadata.annotations ?? {})) {
        return { result: current };
      }
      const revision = this.nextRevision();
      const { uid, generation, creationTimestamp } = current.metadata;
      const stored: AnyObject = {
        apiVersion: current.apiVersion,
        kind,
        metadata: {
          name,
          ...(labels !== undefined && { labels }),
          ...(annotations !== undefined && { annotations }),
          ...(uid !== undefined && { uid }),
          resourceVersion: String(revision),
          generation: (generation ?? 1) + (specChanged ? 1 : 0),
          ...(creationTimestamp !== undefined && { creationTimestamp }),
        },
        ...('spec' in input && { spec: input.spec }),
        ...(current.status !== undefined && { status: current.status }),
      };
      return this.commit('MODIFIED', stored, revision);
    });
  }

  async updateStatus(kind: KindName, name: string, status: unknown, options: WriteOptions = {}): Promise<AnyObject> {
    this.assertOpen();
    return this.write(() => this.statusWrite(kind, name, status, [options.resourceVersion]));
  }

  /**
   * Replaces the status of many objects of one kind in one transaction: one fsync for all of
   * them instead of one each (node health writes thousands after a reconnect storm). Items
   * succeed or fail on their own: `results[i]` is the stored object, or the error (NOT_FOUND,
   * INVALID) that refused item i. Watchers see the events after the commit, in revision order.
   */
  async updateStatuses(kind: KindName, items: { name: string; status: unknown }[]): Promise<(AnyObject | Error)[]> {
    this.assertOpen();
    // Queued in the same tick, so they share one group commit (see write()).
    const settled = await Promise.allSettled(items.map((item) => this.write(() => this.statusWrite(kind, item.name, item.status, []))));
    return settled.map((s) => (s.status === 'fulfilled' ? s.value : s.reason instanceof Error ? s.reason : new Error(String(s.reason))));
  }

  private statusWrite(kind: KindName, name: string, status: unknown, preconditions: (string | undefined)[]): { result: AnyObject; event?: WatchEvent } {
    const current = this.current(kind, name, preconditions);
    if (deepEqual(status, current.status)) return { result: current };
    const { status: _old, ...rest } = current;
    // Validate the object as it would be stored, so the store never holds an invalid status.
    validateObject(status === undefined ? rest : { ...rest, status });
    const revision = this.nextRevision();
    const stored: AnyObject = { ...rest, metadata: { ...rest.metadata, resourceVersion: String(revision) } };
    if (status !== undefined) stored.status = status;
    return this.commit('MODIFIED', stored, revision);
  }

  async delete(kind: KindName, name: string, options: WriteOptions = {}): Promise<AnyObject> {
    this.assertOpen();
    return this.write(() => {
      const current = this.current(kind, name, [options.resourceVersion]);
      const revision = this.nextRevision();
      // The DELETED event carries the deletion revision, so a watcher's cursor moves past it.
      const gone: AnyObject = { ...current, metadata: { ...current.metadata, resourceVersion: String(revision) } };
      this.stmt.remove.run(kind, name);
      return this.commit('DELETED', gone, revision);
    });
  }

  async watch(options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<{ stop(): void }> {
    this.assertOpen();
    const from = options.fromRevision;
    if (!Number.isSafeInteger(from) || from < 0) {
      throw new OutpostError('BAD_REQUEST', `watch: fromRevision must be an integer >= 0, got ${String(from)}`);
    }
    const compacted = this.metaValue('compacted');
    if (from < compacted) {
      throw new OutpostError(
        'REVISION_TOO_OLD',
        `watch from revision ${from}: history was compacted; the oldest resumable revision is ${compacted} (list again, then watch from the list's revision)`,
      );
    }
    return this.watchers.add(options, onEvent);
  }

  async currentRevision(): Promise<number> {
    this.assertOpen();
    return this.metaValue('revision');
  }

  /** The oldest revision a watch can still resume from. */
  compactedRevision(): number {
    this.assertOpen();
    return this.metaValue('compacted');
  }

  /**
   * Drops history beyond the newest `historyLimit` events (never past a watcher that is still
   * replaying). Returns the compacted revision. Also runs inside every `compactEvery`-th write.
   */
  compact(): number {
    this.assertOpen();
    return this.db.transaction(() => this.compactInTransaction()).immediate();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushWrites(); // writes already requested are committed, not lost
    this.closed = true;
    this.wal?.close(); // fsyncs them now; their callers are answered
    await this.durable;
    this.watchers.close();
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new OutpostError('UNAVAILABLE', 'store is closed');
  }

  private metaValue(key: 'revision' | 'compacted'): number {
    const row = this.stmt.meta.get(key);
    if (!row) throw new OutpostError('INTERNAL', `store meta row "${key}" is missing`);
    return row.value;
  }

  private nextRevision(): number {
    const row = this.stmt.bump.get();
    if (!row) throw new OutpostError('INTERNAL', 'store meta row "revision" is missing');
    return row.value;
  }

  /** The stored object, or NOT_FOUND; CONFLICT unless every given precondition matches it. */
  private current(kind: string, name: string, preconditions: (string | undefined)[]): AnyObject {
    const row = this.stmt.get.get(kind, name);
    if (!row) throw new OutpostError('NOT_FOUND', `${kind} "${name}" not found`);
    const stored = String(row.revision);
    for (const want of preconditions) {
      if (want !== undefined && want !== stored) {
        throw new OutpostError('CONFLICT', `${kind} "${name}" was modified: resourceVersion is ${stored}, not ${want}; get it again and retry`);
      }
    }
    return parse(row.json);
  }

  /**
   * Group commit: writes requested in the same tick run in one immediate transaction, each in
   * its own savepoint (a refused write rolls back alone), so a burst of N writes costs one fsync
   * instead of N (issue 7: joins, node status, instance reports and scheduler writes of
   * thousands of nodes). The fsync of a file store runs on the thread pool (WalSync), not on the
   * event loop, and transactions committed while one runs share the next. Events are delivered
   * after the fsync, in revision order, and only then are the callers' promises settled: a caller
   * (and the cache, which is fed by the events) never sees a write before it is durable.
   */
  private write(fn: () => { result: AnyObject; event?: WatchEvent }): Promise<AnyObject> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.pendingWrites.push({ fn, resolve, reject });
      if (this.pendingWrites.length === 1) setImmediate(() => this.flushWrites());
    });
  }

  private pendingWrites: { fn: () => { result: AnyObject; event?: WatchEvent }; resolve(v: AnyObject): void; reject(e: unknown): void }[] = [];
  /** Set when an fsync failed: what was committed may not be on disk, so the store takes no more writes (restart the hub). */
  private failed: OutpostError | undefined;

  private flushWrites(): void {
    const batch = this.pendingWrites;
    if (batch.length === 0) return;
    this.pendingWrites = [];
    if (this.closed || this.failed) {
      for (const w of batch) w.reject(this.failed ?? new OutpostError('UNAVAILABLE', 'store is closed'));
      return;
    }
    const outcomes: ({ ok: true; result: AnyObject; event?: WatchEvent } | { ok: false; err: unknown })[] = [];
    try {
      this.db.transaction(() => {
        for (const w of batch) {
          try {
            outcomes.push({ ok: true, ...this.db.transaction(w.fn)() });
          } catch (err) {
            outcomes.push({ ok: false, err });
          }
        }
      }).immediate();
    } catch (err) {
      for (const w of batch) w.reject(err); // the commit itself failed: nothing was written
      return;
    }
    const settle = () => {
      for (const o of outcomes) if (o.ok && o.event) this.watchers.publish(o.event);
      batch.forEach((w, i) => {
        const o = outcomes[i]!;
        if (o.ok) w.resolve(o.result);
        else w.reject(o.err);
      });
    };
    if (!this.wal) {
      settle();
      return;
    }
    // A batch that changed nothing still waits for the fsyncs before it (it may have read what
    // they wrote); fsyncs settle in commit order, so events stay in revision order across batches.
    const synced = outcomes.some((o) => o.ok && o.event) ? this.wal.sync() : this.durable;
    this.durable = synced.then(settle, (err: unknown) => {
      this.failed ??= new OutpostError('UNAVAILABLE', `store: fsync of the WAL failed (${(err as Error).message}); writes since the last fsync may not be on disk: restart the hub`);
      this.log?.error({ err }, 'store fsync failed; refusing further writes');
      for (const w of batch) w.reject(this.failed);
    });
  }

  /** Settles when the callers of every batch committed so far are answered. */
  private durable: Promise<void> = Promise.resolve();

  /** Writes the object row (unless deleted) and the history row; compacts every Nth write. */
  private commit(type: WatchEventType, stored: AnyObject, revision: number): { result: AnyObject; event: WatchEvent } {
    const json = JSON.stringify(stored);
    const { kind, metadata: { name } } = stored;
    if (type !== 'DELETED') this.stmt.put.run(kind, name, revision, json);
    this.stmt.append.run(revision, type, kind, name, json);
    if (++this.writesSinceCompaction >= this.compactEvery) this.compactInTransaction();
    return { result: stored, event: { type, object: deepFreeze(parse(json)), revision } };
  }

  private compactInTransaction(): number {
    this.writesSinceCompaction = 0;
    const current = this.metaValue('revision');
    const compacted = this.metaValue('compacted');
    const target = Math.min(current - this.historyLimit, this.watchers.pinnedRevision());
    if (target <= compacted) return compacted;
    this.stmt.trim.run(target);
    this.stmt.setMeta.run(target, 'compacted');
    return target;
  }
}

function parse(json: string): AnyObject {
  return JSON.parse(json) as AnyObject;
}
