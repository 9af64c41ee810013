import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryState, type RegisterInput } from '../../edge-agent/registry/registry-state.js';
import type { RegistryRecord, ServiceInstance } from '../../edge-agent/registry/records.js';
import { isOutpostError } from '../../shared/errors.js';
import { ManualClock } from '../helpers/manual-clock.js';

function input(service: string, id: string, extra: Partial<RegisterInput> = {}): RegisterInput {
  return { service, id, address: '10.0.0.1', port: 8080, protocol: 'http', metadata: {}, weight: 100, lease: { kind: 'ttl', ttlMs: 10_000 }, ...extra };
}

function remote(origin: string, unit: string, service: string, id: string, version: [number, number], extra: Partial<ServiceInstance> = {}): RegistryRecord {
  return {
    key: `${service}/${id}`, origin, version: { incarnation: version[0], counter: version[1] },
    instance: { service, id, node: origin, unit, address: '10.0.0.2', port: 80, protocol: 'tcp', metadata: {}, weight: 100, health: 'passing', lease: { kind: 'ttl', ttlMs: 5_000 }, ...extra },
  };
}

function tombstone(origin: string, service: string, id: string, version: [number, number]): RegistryRecord {
  return { key: `${service}/${id}`, origin, version: { incarnation: version[0], counter: version[1] } };
}

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-registry-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function open(dir: string, clock = new ManualClock(), node = 'n1') {
  const db = new Database(join(dir, 'registry.db'));
  db.pragma('journal_mode = WAL');
  return { db, state: new RegistryState({ db, clock }, { node, unit: 'u1', tombstoneRetentionMs: 60_000 }) };
}

test('registry state: own writes are versioned by (incarnation, counter), indexed, and told to listeners', () => withDir((dir) => {
  const { db, state } = open(dir);
  assert.equal(state.incarnation, 1);
  const seen: Array<[string[], number]> = [];
  state.onChange((changed, index) => seen.push([changed.map((r) => r.key), index]));
  const a = state.register(input('web', 'a'));
  assert.deepEqual(a.version, { incarnation: 1, counter: 1 });
  assert.equal(a.instance?.node, 'n1');
  assert.equal(a.instance?.unit, 'u1');
  assert.equal(a.instance?.health, 'passing');
  // The same registration again changes nothing (no new version, no index step).
  assert.equal(state.register(input('web', 'a')), a);
  const moved = state.register(input('web', 'a', { port: 9090 }));
  assert.deepEqual(moved.version, { incarnation: 1, counter: 2 });
  assert.equal(state.setHealth('web', 'a', 'critical')?.version.counter, 3);
  assert.deepEqual(state.lookup('web'), [], 'critical instances are hidden by default');
  assert.equal(state.lookup('web', { all: true }).length, 1);
  const gone = state.deregister('web', 'a');
  assert.equal(gone?.instance, undefined);
  assert.equal(state.get('web/a')?.instance, undefined, 'a tombstone is held');
  assert.deepEqual(state.services(), []);
  assert.deepEqual(seen, [[['web/a'], 1], [['web/a'], 2], [['web/a'], 3], [['web/a'], 4]]);
  assert.equal(state.index(), 4);
  assert.equal(state.serviceIndex('web'), 4);
  assert.equal(state.deregister('web', 'a'), undefined, 'deregistering twice is a no-op');
  db.close();
}));

test('registry state: bad service names and ids are refused and change nothing', () => withDir((dir) => {
  const { db, state } = open(dir);
  for (const [service, id, path] of [['Web', 'a', '/service'], ['web', 'a/b', '/id'], ['-x', 'a', '/service'], ['web', '', '/id']] as const) {
    assert.throws(() => state.register(input(service, id)), (e) => isOutpostError(e, 'INVALID') && e.fields?.[0]?.path === path);
  }
  assert.equal(state.index(), 0);
  db.close();
}));

test('registry state: lookups are ordered by nearness, then weight; suspected origins are critical', () => withDir((dir) => {
  const { db, state } = open(dir);
  state.register(input('db', 'local-light', { weight: 10 }));
  state.register(input('db', 'local-heavy', { weight: 500 }));
  state.mergeRemote([
    remote('n2', 'u1', 'db', 'peer', [1, 1]),
    remote('x9', 'u2', 'db', 'far', [3, 7]),
    remote('n3', 'u1', 'db', 'peer-heavy', [1, 1], { weight: 900 }),
  ]);
  assert.deepEqual(state.lookup('db').map((v) => [v.id, v.nearness]), [
    ['local-heavy', 'node'], ['local-light', 'node'], ['peer-heavy', 'unit'], ['peer', 'unit'], ['far', 'remote'],
  ]);
  assert.deepEqual(state.lookup('db', { unit: 'u2' }).map((v) => v.id), ['far']);
  const before = state.index();
  let told: string[] = [];
  state.onChange((changed) => { told = changed.map((r) => r.key); });
  state.setOriginSuspected('n2', true);
  assert.equal(state.index(), before + 1);
  assert.deepEqual(told, ['db/peer']);
  assert.deepEqual(state.lookup('db').map((v) => v.id), ['local-heavy', 'local-light', 'peer-heavy', 'far']);
  const peer = state.lookup('db', { all: true }).find((v) => v.id === 'peer');
  assert.equal(peer?.health, 'critical');
  assert.equal(peer?.originSuspected, true);
  assert.equal(state.get('db/peer')?.instance?.health, 'passing', 'the overlay never changes the record itself');
  state.setOriginSuspected('n2', false);
  assert.equal(state.lookup('db').length, 5);
  state.setOriginSuspected('n2', false);
  assert.equal(state.index(), before + 2, 'lifting an overlay that is not there is no change');
  db.close();
}));

test('registry state: merges keep the newest version per origin and tombstones stop resurrection', () => withDir((dir) => {
  const { db, state } = open(dir);
  assert.equal(state.mergeRemote([remote('n2', 'u1', 'api', 'a', [2, 5])]).length, 1);
  assert.equal(state.mergeRemote([remote('n2', 'u1', 'api', 'a', [2, 5])]).length, 0, 'same version: no change');
  assert.equal(state.mergeRemote([remote('n2', 'u1', 'api', 'a', [1, 99], { port: 1 })]).length, 0, 'older incarnation loses whatever its counter');
  assert.equal(state.get('api/a')?.instance?.port, 80);
  assert.equal(state.mergeRemote([tombstone('n2', 'api', 'a', [2, 6])]).length, 1);
  assert.deepEqual(state.lookup('api', { all: true }), []);
  assert.equal(state.mergeRemote([remote('n2', 'u1', 'api', 'a', [2, 5])]).length, 0, 'an old live copy does not come back');
  // A tombstone for a key never seen is kept too: the live copy may arrive later.
  state.mergeRemote([tombstone('n2', 'api', 'b', [2, 9])]);
  state.mergeRemote([remote('n2', 'u1', 'api', 'b', [2, 8])]);
  assert.deepEqual(state.lookup('api'), []);
  // Key collision between two origins: the lexically smaller origin keeps it.
  state.mergeRemote([remote('n5', 'u1', 'api', 'c', [1, 1])]);
  state.mergeRemote([remote('n4', 'u1', 'api', 'c', [1, 1])]);
  state.mergeRemote([remote('n5', 'u1', 'api', 'c', [9, 9])]);
  assert.equal(state.get('api/c')?.origin, 'n4');
  assert.equal(state.recordsOf('n5').length, 0);
  // Malformed records are skipped, the rest of the batch applies.
  const bad = { ...remote('n2', 'u1', 'api', 'd', [3, 1]), key: 'api/other' };
  const applied = state.mergeRemote([bad, remote('n2', 'u1', 'api', 'e', [3, 1])]);
  assert.deepEqual(applied.map((r) => r.key), ['api/e']);
  assert.equal(state.register(input('api', 'x')).origin, 'n1');
  assert.throws(() => state.deregister('api', 'e'), (e) => isOutpostError(e, 'FORBIDDEN'));
  db.close();
}));

test('registry state: a registration that would lose a key collision is refused', () => withDir((dir) => {
  const { db, state } = open(dir, new ManualClock(), 'n5');
  state.mergeRemote([remote('n1', 'u1', 'api', 'a', [1, 1])]);
  assert.throws(() => state.register(input('api', 'a')), (e) => isOutpostError(e, 'CONFLICT'));
  state.mergeRemote([remote('n9', 'u1', 'api', 'b', [1, 1])]);
  assert.equal(state.register(input('api', 'b')).origin, 'n5', 'a larger origin loses the key to this node');
  db.close();
}));

test('registry state: tombstones are kept for the retention on the monotonic clock, then dropped', () => withDir((dir) => {
  const clock = new ManualClock();
  const { db, state } = open(dir, clock);
  state.start();
  state.register(input('web', 'a'));
  state.deregister('web', 'a');
  state.mergeRemote([tombstone('n2', 'web', 'b', [1, 2])]);
  clock.advance(59_000);
  assert.equal(state.counts().tombstones, 2);
  clock.advance(16_000);
  assert.equal(state.counts().tombstones, 0);
  assert.equal(state.get('web/a'), undefined);
  state.stop();
  assert.equal(clock.pending, 0);
  db.close();
  const again = open(dir);
  assert.equal(again.state.get('web/a'), undefined, 'a dropped own tombstone is gone from registry.db too');
  again.db.close();
}));

test('registry state: a restart comes back with incarnation+1 and re-announces own live records', () => withDir((dir) => {
  const first = open(dir);
  first.state.register(input('web', 'a'));
  first.state.register(input('web', 'b'));
  for (let i = 0; i < 5; i++) first.state.register(input('web', 'a', { port: 1000 + i }));
  first.state.deregister('web', 'b');
  first.state.mergeRemote([remote('n2', 'u1', 'web', 'peer', [1, 1])]);
  first.db.close();

  const second = open(dir);
  assert.equal(second.state.incarnation, 2);
  const a = second.state.get('web/a');
  assert.equal(a?.instance?.port, 1004);
  assert.equal(a?.version.incarnation, 2);
  assert.ok(a && first.state.get('web/a') && a.version.counter < first.state.get('web/a')!.version.counter, 'a lower counter in a newer incarnation');
  assert.equal(second.state.get('web/b')?.instance, undefined, 'own tombstone kept across restarts');
  assert.equal(second.state.get('web/peer'), undefined, 'replicated records are not persisted');
  assert.deepEqual(second.state.lookup('web').map((v) => v.id), ['a']);
  assert.ok(second.state.index() > 0, 'the re-announcement is a change');
  second.db.close();
  assert.equal(open(dir).state.incarnation, 3);
}));

test('registry state: a peer copy of an own record this node does not hold is answered with a newer truth', () => withDir((dir) => {
  const { db, state } = open(dir);
  state.register(input('web', 'live'));
  // An old live copy from an earlier life of this node, under a key it no longer holds: deleted.
  const [deleted] = state.mergeRemote([remote('n1', 'u1', 'web', 'stale', [0, 40])]);
  assert.equal(deleted?.instance, undefined);
  assert.equal(deleted?.origin, 'n1');
  assert.equal(deleted?.version.incarnation, 1);
  // A copy from a future incarnation (the data dir was wiped): the incarnation jumps past it.
  const [reissued] = state.mergeRemote([remote('n1', 'u1', 'web', 'live', [7, 1], { port: 1 })]);
  assert.equal(reissued?.instance?.port, 8080);
  assert.deepEqual(reissued?.version, { incarnation: 8, counter: 1 });
  assert.equal(state.incarnation, 8);
  assert.equal(state.mergeRemote([remote('n1', 'u1', 'web', 'live', [1, 1])]).length, 0, 'older own copies are ignored');
  db.close();
  assert.equal(open(dir).state.incarnation, 9, 'the jumped incarnation is persisted');
}));

test('registry state: a throwing listener does not stop others or the write', () => withDir((dir) => {
  const { db, state } = open(dir);
  let calls = 0;
  state.onChange(() => { throw new Error('boom'); });
  const off = state.onChange(() => { calls++; });
  state.register(input('web', 'a'));
  off();
  state.register(input('web', 'b'));
  assert.equal(calls, 1);
  assert.equal(state.lookup('web').length, 2);
  db.close();
}));
