import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isOutpostError } from '../../shared/errors.js';
import { SqliteStore, openDatabase, type SqliteStoreOptions } from '../../cloud-hub/store/sqlite-store.js';
import type { WatchEvent } from '../../cloud-hub/store/store.js';
import { nodeUnit } from '../helpers/objects.js';
import { runStoreContract, type StoreHarness } from './store.contract.js';

/** Keeps two events of history on compact(), so the contract can test REVISION_TOO_OLD. */
const CONTRACT_HISTORY_LIMIT = 2;

function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-sqlite-store-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

runStoreContract('sqlite file', async (): Promise<StoreHarness> => {
  const { dir, remove } = tempDir();
  const options: SqliteStoreOptions = { path: join(dir, 'hub.db'), historyLimit: CONTRACT_HISTORY_LIMIT };
  let store = SqliteStore.open(options);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = SqliteStore.open(options);
      return store;
    },
    compact: async () => {
      store.compact();
    },
    cleanup: async () => {
      await store.close();
      remove();
    },
  };
});

runStoreContract('sqlite :memory:', async (): Promise<StoreHarness> => {
  const store = SqliteStore.open({ path: ':memory:', historyLimit: CONTRACT_HISTORY_LIMIT });
  return { store, compact: async () => void store.compact(), cleanup: () => store.close() };
});

void describe('SqliteStore specifics', () => {
  void test('the file is in WAL mode and the hub connection fsyncs every commit', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'hub.db');
      const store = SqliteStore.open({ path });
      await store.create(nodeUnit('site-a'));
      const other = new Database(path, { readonly: true });
      assert.equal(other.pragma('journal_mode', { simple: true }), 'wal');
      assert.deepEqual(other.prepare('SELECT count(*) AS n FROM objects').get(), { n: 1 }, 'a second connection sees the committed write');
      other.close();
      await store.close();
      const db = openDatabase(path);
      assert.equal(db.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL');
      db.close();
    } finally {
      remove();
    }
  });

  void test('compaction trims history, persists the compacted revision and never moves the counter', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'hub.db');
      let store = SqliteStore.open({ path, historyLimit: 2, compactEvery: 3 });
      const revs: number[] = [];
      for (const n of ['a', 'b', 'c', 'd', 'e']) revs.push(Number((await store.create(nodeUnit(`site-${n}`))).metadata.resourceVersion));
      // The 3rd write compacted to 3 - 2 = 1; no compaction since.
      assert.equal(store.compactedRevision(), revs[0]);
      for (const n of ['a', 'b', 'c', 'd', 'e']) await store.delete('NodeUnit', `site-${n}`);
      // Writes 6 and 9 compacted too; deletes move the counter forward like any write.
      const current = await store.currentRevision();
      assert.equal(current, revs[4]! + 5);
      assert.equal(store.compact(), current - 2);
      await store.close();

      const db = new Database(path, { readonly: true });
      assert.deepEqual(db.prepare('SELECT revision FROM history ORDER BY revision').pluck().all(), [current - 1, current]);
      db.close();

      store = SqliteStore.open({ path, historyLimit: 2 });
      assert.equal(await store.currentRevision(), current);
      assert.equal(store.compactedRevision(), current - 2);
      await assert.rejects(
        store.watch({ fromRevision: current - 3 }, () => undefined),
        (err: unknown) => isOutpostError(err, 'REVISION_TOO_OLD') && err.message.includes(`oldest resumable revision is ${current - 2}`),
      );
      const events: WatchEvent[] = [];
      const w = await store.watch({ fromRevision: current - 2 }, (e) => events.push(e));
      const next = await store.create(nodeUnit('site-a'));
      w.stop();
      assert.equal(next.metadata.resourceVersion, String(current + 1));
      assert.deepEqual(events.map((e) => [e.type, e.revision]), [['DELETED', current - 1], ['DELETED', current], ['ADDED', current + 1]]);
      await store.close();
    } finally {
      remove();
    }
  });

  void test('a long replay is paged, stays in order, and compaction does not overtake it', async () => {
    const store = SqliteStore.open({ path: ':memory:', historyLimit: 600, compactEvery: 1 });
    try {
      for (let i = 0; i < 1200; i++) await store.create(nodeUnit(`site-${i}`));
      const from = store.compactedRevision();
      assert.equal(from, 600);
      const events: WatchEvent[] = [];
      const w = await store.watch({ fromRevision: from }, (e) => events.push(e));
      // The first page (500 events) was delivered synchronously; the rest is still to come.
      assert.equal(events.length, 500);
      // These writes compact on every write, but not past the replaying watcher.
      for (let i = 0; i < 700; i++) await store.updateStatus('NodeUnit', `site-${i}`, { nodes: { total: 1, ready: 1, disconnected: 0 } });
      // Writes are group-committed on a later tick, so the replay advances meanwhile: compaction
      // reaches at least the first page's end and never past what the watcher has been given.
      assert.ok(store.compactedRevision() >= 1100 && store.compactedRevision() <= from + events.length, `compacted ${store.compactedRevision()}, delivered up to ${from + events.length}`);
      const deadline = Date.now() + 2000;
      while (events.length < 1300 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      w.stop();
      assert.deepEqual(events.map((e) => e.revision), Array.from({ length: 1300 }, (_, i) => from + 1 + i));
      // Once live again, the pin is gone: the next compaction catches up.
      await store.create(nodeUnit('last'));
      assert.equal(store.compactedRevision(), 1901 - 600);
    } finally {
      await store.close();
    }
  });

  void test('event objects are frozen; returned objects are the caller\'s own', async () => {
    const store = SqliteStore.open({ path: ':memory:' });
    try {
      const events: WatchEvent[] = [];
      await store.watch({ fromRevision: 0 }, (e) => events.push(e));
      const created = await store.create(nodeUnit('site-a'));
      assert.throws(() => {
        (events[0]!.object.metadata as { name: string }).name = 'other';
      }, TypeError);
      created.metadata.labels = { changed: 'locally' };
      const got = await store.get('NodeUnit', 'site-a');
      assert.equal(got?.metadata.labels, undefined);
    } finally {
      await store.close();
    }
  });

  void test('a closed store fails clearly; close is idempotent', async () => {
    const store = SqliteStore.open({ path: ':memory:' });
    await store.close();
    await store.close();
    await assert.rejects(store.get('NodeUnit', 'x'), (err: unknown) => isOutpostError(err, 'UNAVAILABLE') && /closed/.test(err.message));
    await assert.rejects(store.create(nodeUnit('x')), (err: unknown) => isOutpostError(err, 'UNAVAILABLE'));
    assert.throws(() => store.compact(), (err: unknown) => isOutpostError(err, 'UNAVAILABLE'));
  });

  void test('bad options and a newer schema are refused', async () => {
    assert.throws(() => SqliteStore.open({ path: ':memory:', historyLimit: -1 }), (err: unknown) => isOutpostError(err, 'BAD_REQUEST'));
    assert.throws(() => SqliteStore.open({ path: ':memory:', compactEvery: 0 }), (err: unknown) => isOutpostError(err, 'BAD_REQUEST'));
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'future.db');
      const db = new Database(path);
      db.pragma('user_version = 99');
      db.close();
      assert.throws(() => SqliteStore.open({ path }), /newer/);
    } finally {
      remove();
    }
  });
});
