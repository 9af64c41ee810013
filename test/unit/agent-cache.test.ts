import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DesiredCache } from '../../edge-agent/cache/desired-cache.js';
import { Outbox } from '../../edge-agent/cache/outbox.js';
import { openAgentDatabase } from '../../edge-agent/cache/database.js';
import { CacheHealth } from '../../edge-agent/cache/cache-health.js';
import { silentLogger } from '../../shared/logger.js';
import type { SyncFrame } from '../../shared/protocol/frames.js';
import { instance, nodeUnit } from '../helpers/objects.js';

const withRv = <T extends { metadata: { resourceVersion?: string } }>(o: T, rv: number): T => ({ ...o, metadata: { ...o.metadata, resourceVersion: String(rv) } });

test('desired cache: a batch is applied atomically and re-applying it changes nothing', () => {
  const cache = new DesiredCache(new Database(':memory:'));
  const batch: SyncFrame = { type: 'sync', revision: 5, objects: [withRv(nodeUnit('site-a'), 2), withRv(instance('i-0', { node: 'n1' }), 5)], deletes: [] };
  cache.apply(batch);
  const first = JSON.stringify(cache.cachedKeys());
  cache.apply(batch);
  assert.equal(JSON.stringify(cache.cachedKeys()), first);
  assert.equal(cache.appliedRevision(), 5);
  assert.deepEqual(cache.instances().map((i) => i.metadata.name), ['i-0']);
  // A replace batch drops what it does not list; an older revision never moves the cursor back.
  cache.apply({ type: 'sync', revision: 3, objects: [], deletes: [], keys: [{ kind: 'NodeUnit', name: 'site-a' }] });
  assert.deepEqual(cache.cachedKeys().map((k) => k.name), ['site-a']);
  assert.equal(cache.appliedRevision(), 5);
});

test('desired cache: a failing batch leaves the cache as it was', () => {
  const db = new Database(':memory:');
  const cache = new DesiredCache(db);
  cache.apply({ type: 'sync', revision: 1, objects: [withRv(nodeUnit('site-a'), 1)], deletes: [] });
  const broken = { type: 'sync', revision: 9, objects: [withRv(nodeUnit('site-b'), 9), { kind: 'X', metadata: {} }], deletes: [] } as unknown as SyncFrame;
  assert.throws(() => cache.apply(broken));
  assert.deepEqual(cache.cachedKeys().map((k) => k.name), ['site-a']);
  assert.equal(cache.appliedRevision(), 1);
});

test('outbox: statuses coalesce per key, ack deletes only what the hub stored', () => {
  const box = new Outbox(new Database(':memory:'));
  box.put('instance-status', { v: 1 }, 'instance/a');
  box.put('event', { e: 1 });
  const inflight = box.batch(10);
  assert.equal(inflight.length, 2);
  box.put('instance-status', { v: 2 }, 'instance/a'); // newer status while the batch is in flight
  box.ack(Math.max(...inflight.map((i) => i.seq)));
  const left = box.batch(10);
  assert.deepEqual(left.map((i) => i.body), [{ v: 2 }], 'the newer status survives the ack of the older one');
  assert.ok((left[0]?.seq ?? 0) > Math.max(...inflight.map((i) => i.seq)), 'sequence numbers only grow');
});

test('outbox: the event budget drops the oldest and counts them', () => {
  const box = new Outbox(new Database(':memory:'), { maxEvents: 3 });
  for (let i = 0; i < 5; i++) box.put('event', { i });
  box.put('node-status', { n: 1 }, 'node');
  assert.deepEqual(box.batch(10).map((r) => r.body), [{ i: 2 }, { i: 3 }, { i: 4 }, { n: 1 }]);
  assert.equal(box.droppedEvents(), 2);
});

test('outbox: a recreated file never reuses sequence numbers of the old one', async () => {
  const a = new Outbox(new Database(':memory:'));
  for (let i = 0; i < 500; i++) a.put('event', {});
  const seqA = Math.max(...a.batch(1000).map((r) => r.seq));
  await new Promise((r) => setTimeout(r, 5)); // seeds are time-based (microseconds)
  const b = new Outbox(new Database(':memory:'));
  b.put('event', {});
  assert.ok((b.batch(1)[0]?.seq ?? 0) > seqA, 'a fresh outbox starts above every earlier one');
});

test('a corrupt cache file is moved aside, not deleted, and a fresh cache opens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-cache-'));
  try {
    const path = join(dir, 'cache.db');
    writeFileSync(path, 'this is not a database, just garbage bytes '.repeat(200));
    const { db, quarantined } = openAgentDatabase(path, silentLogger());
    new DesiredCache(db).apply({ type: 'sync', revision: 1, objects: [], deletes: [] });
    db.close();
    assert.match(quarantined?.movedTo ?? '', /cache\.db\.corrupt-/);
    assert.match(quarantined?.error ?? '', /not a database/);
    const health = new CacheHealth(quarantined);
    assert.equal(health.current.status, 'False');
    assert.equal(health.current.reason, 'Quarantined');
    health.rebuilt();
    assert.deepEqual([health.current.status, health.current.reason], ['True', 'RebuiltFromHub']);
    const files = readdirSync(dir);
    assert.ok(files.some((f) => f.startsWith('cache.db.corrupt-')), files.join());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('outbox: events past the age budget are dropped and counted; statuses never are', () => {
  let now = 1_000_000;
  const box = new Outbox(new Database(':memory:'), { maxEventAgeMs: 60_000, now: () => now });
  box.put('event', { old: true });
  box.put('instance-status', { s: 1 }, 'instance/a');
  now += 120_000;
  box.put('event', { fresh: true });
  assert.equal(box.dropExpired(), 1);
  assert.deepEqual(box.batch(10).map((r) => r.body), [{ s: 1 }, { fresh: true }]);
  assert.equal(box.droppedEvents(), 1);
});
