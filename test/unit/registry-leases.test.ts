import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { InstanceStatus } from '../../shared/api/instance.js';
import { silentLogger } from '../../shared/logger.js';
import { isOutpostError } from '../../shared/errors.js';
import { RegistryState } from '../../edge-agent/registry/registry-state.js';
import { TtlLeases } from '../../edge-agent/registry/ttl-leases.js';
import { ProcessLeases, type DesiredServiceInstance } from '../../edge-agent/registry/process-leases.js';
import { ManualClock } from '../helpers/manual-clock.js';

function setup() {
  const clock = new ManualClock();
  const db = new Database(':memory:');
  const registry = new RegistryState({ db, clock }, { node: 'n1', unit: 'u1' });
  const expiries: string[] = [];
  const leases = new TtlLeases({ registry, clock, onExpiry: (kind, key) => expiries.push(`${kind}:${key}`) }, { graceTtls: 3, tickMs: 100 });
  return { clock, db, registry, leases, expiries };
}

const ttl = (ttlMs: number) => ({ address: '10.0.0.1', port: 80, protocol: 'tcp' as const, metadata: {}, weight: 100, lease: { kind: 'ttl' as const, ttlMs } });

test('ttl lease: a silent instance turns critical after its ttl, then is removed after the grace', () => {
  const { clock, registry, leases, expiries } = setup();
  leases.start();
  registry.register({ service: 'web', id: 'a', ...ttl(1_000) });
  clock.advance(900);
  assert.equal(registry.lookup('web').length, 1);
  clock.advance(300);
  assert.equal(registry.lookup('web').length, 0, 'critical: hidden from default lookups');
  assert.equal(registry.lookup('web', { all: true })[0]?.health, 'critical');
  clock.advance(2_600);
  assert.equal(registry.lookup('web', { all: true }).length, 1, 'still inside the grace of 3 ttls');
  clock.advance(400);
  assert.equal(registry.lookup('web', { all: true }).length, 0);
  assert.equal(registry.get('web/a')?.instance, undefined, 'removed as a tombstone');
  assert.deepEqual(expiries, ['critical:web/a', 'removed:web/a']);
  assert.equal(leases.tracked(), 0);
  leases.stop();
});

test('ttl lease: heartbeats keep an instance passing and bring a critical one back', () => {
  const { clock, registry, leases } = setup();
  leases.start();
  registry.register({ service: 'web', id: 'a', ...ttl(1_000) });
  for (let i = 0; i < 10; i++) {
    clock.advance(800);
    leases.heartbeat('web', 'a');
  }
  assert.equal(registry.lookup('web').length, 1);
  const before = registry.get('web/a')?.version.counter;
  clock.advance(1_500);
  assert.equal(registry.lookup('web').length, 0);
  assert.equal(leases.heartbeat('web', 'a').instance?.health, 'passing');
  assert.equal(registry.lookup('web').length, 1);
  assert.equal(registry.get('web/a')?.version.counter, (before ?? 0) + 2, 'critical and passing again: two versions, heartbeats alone none');
  assert.throws(() => leases.heartbeat('web', 'nope'), (e) => isOutpostError(e, 'NOT_FOUND'));
  registry.register({ service: 'web', id: 'p', address: '10.0.0.1', port: 1, protocol: 'tcp', metadata: {}, weight: 1, lease: { kind: 'process', instance: 'p' } });
  assert.throws(() => leases.heartbeat('web', 'p'), (e) => isOutpostError(e, 'CONFLICT'));
  leases.stop();
  assert.equal(clock.pending, 0);
});

test('ttl lease: registrations from before a restart get a fresh ttl from the restart', () => {
  const clock = new ManualClock();
  const db = new Database(':memory:');
  const first = new RegistryState({ db, clock }, { node: 'n1', unit: 'u1' });
  first.register({ service: 'web', id: 'a', ...ttl(1_000) });
  clock.advance(10_000);
  const registry = new RegistryState({ db, clock }, { node: 'n1', unit: 'u1' });
  const leases = new TtlLeases({ registry, clock }, { tickMs: 100 });
  leases.start();
  clock.advance(900);
  assert.equal(registry.lookup('web').length, 1);
  clock.advance(4_200);
  assert.equal(registry.lookup('web', { all: true }).length, 0);
  leases.stop();
});

test('process leases: EdgeApp instances are registered while they run, health follows readiness, removed when gone', () => {
  const clock = new ManualClock();
  const registry = new RegistryState({ db: new Database(':memory:'), clock }, { node: 'n1', unit: 'u1' });
  let desired: DesiredServiceInstance[] | undefined;
  const statuses = new Map<string, InstanceStatus>();
  const leases = new ProcessLeases({ registry, desired: () => desired, statuses: () => statuses, clock, log: silentLogger() }, { address: '192.168.1.5', refreshMs: 500 });
  // Adopted before the desired state is known: a running instance's registration is kept.
  registry.register({ service: 'pos', id: 'pos-u1-0', address: '192.168.1.5', port: 9000, protocol: 'tcp', metadata: {}, weight: 100, health: 'passing', lease: { kind: 'process', instance: 'pos-u1-0' } });
  statuses.set('pos-u1-0', { phase: 'Running', ready: true, restarts: 0 });
  leases.start();
  assert.equal(registry.lookup('pos').length, 1);

  desired = [{ name: 'pos-u1-0', service: { name: 'pos', port: 9000, protocol: 'http', metadata: { v: '2' } } }, { name: 'plain-u1-0' }];
  statuses.set('plain-u1-0', { phase: 'Running', ready: true, restarts: 0 });
  statuses.set('pos-u1-0', { phase: 'Running', ready: false, restarts: 0 });
  leases.statusChanged('pos-u1-0', statuses.get('pos-u1-0')!);
  const view = registry.lookup('pos', { all: true });
  assert.equal(view.length, 1);
  assert.equal(view[0]?.health, 'critical');
  assert.equal(view[0]?.protocol, 'http');
  assert.deepEqual(view[0]?.metadata, { v: '2' });
  assert.deepEqual(view[0]?.lease, { kind: 'process', instance: 'pos-u1-0' });
  assert.deepEqual(registry.services(), ['pos'], 'instances without spec.service are not registered');
  statuses.set('pos-u1-0', { phase: 'Running', ready: true, restarts: 0 });
  leases.statusChanged('pos-u1-0', statuses.get('pos-u1-0')!);
  assert.equal(registry.lookup('pos')[0]?.address, '192.168.1.5');

  desired = [];
  leases.refresh();
  assert.equal(registry.lookup('pos', { all: true }).length, 0, 'no longer desired: deregistered at once');
  desired = [{ name: 'pos-u1-0', service: { name: 'pos', port: 9000 } }];
  clock.advance(500);
  assert.equal(registry.lookup('pos').length, 1);
  statuses.delete('pos-u1-0');
  clock.advance(500);
  assert.equal(registry.lookup('pos', { all: true }).length, 0, 'no longer running: deregistered by the periodic pass');
  leases.stop();
  assert.equal(clock.pending, 0);
});

test('ttl lease: instances expiring in the same tick are one commit and one change', () => {
  const { clock, registry, leases, expiries } = setup();
  for (let i = 0; i < 50; i++) registry.register({ service: 'bulk', id: `i${i}`, ...ttl(1_000) });
  leases.start();
  const changes: number[] = [];
  registry.onChange((changed) => changes.push(changed.length));
  clock.advance(1_100);
  assert.deepEqual(changes, [50], 'all fifty turned critical in one change');
  assert.equal(registry.lookup('bulk', { all: true }).every((v) => v.health === 'critical'), true);
  clock.advance(3_000);
  assert.deepEqual(changes, [50, 50]);
  assert.equal(registry.services().length, 0);
  assert.equal(expiries.length, 100);
  leases.stop();
});

test('registry batch: writes become visible at the commit, also when the batch body throws after them', () => {
  const { registry } = setup();
  registry.register({ service: 'web', id: 'a', ...ttl(1_000) });
  const before = registry.index();
  assert.throws(() => registry.batch(() => {
    registry.deregister('web', 'a');
    assert.equal(registry.lookup('web').length, 1, 'not visible before the commit');
    throw new Error('boom');
  }));
  // The batch body threw after its write was queued: the write still commits (it was made), once.
  assert.equal(registry.index(), before + 1);
  assert.equal(registry.lookup('web').length, 0);
});
