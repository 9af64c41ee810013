// Issue 7 churn fixes: file stores fsync the WAL off the event loop (WalSync) and still answer a
// write only once it is durable and published; joins likewise; controller passes that only
// recount wait longer unless something urgent comes; app projections are shared per unit.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import type { WatchEvent } from '../../cloud-hub/store/store.js';
import { HubSecrets } from '../../cloud-hub/auth/hub-secrets.js';
import { ControllerLoop } from '../../cloud-hub/controller-loop.js';
import { projectForNode } from '../../cloud-hub/sessions/scope.js';
import { silentLogger } from '../../shared/logger.js';
import type { AnyObject, EdgeNode, NodeUnit } from '../../shared/api/index.js';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { UnitController } from '../../cloud-hub/units/unit-controller.js';
import { edgeNode, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const node = (name: string): AnyObject => ({ apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeNode', metadata: { name }, spec: { unit: 'u' } });

test('file store: a write resolves after its event is published, in revision order, and survives a reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-walsync-'));
  try {
    const path = join(dir, 'store.db');
    let store = SqliteStore.open({ path });
    const events: WatchEvent[] = [];
    const w = await store.watch({ fromRevision: await store.currentRevision() }, (e) => events.push(e));
    // Writes in several ticks: later batches commit while an earlier fsync is still running.
    const writes: Promise<AnyObject>[] = [];
    for (let i = 0; i < 60; i++) {
      const name = `n${i}`;
      writes.push(store.create(node(name)).then((o) => {
        assert.ok(events.some((e) => e.object.metadata.name === name), `${name} resolved before its event was published`);
        return o;
      }));
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(writes);
    assert.deepEqual(events.map((e) => e.revision), [...events.map((e) => e.revision)].sort((a, b) => a - b));
    assert.equal(events.length, 60);
    // A write still waiting for its fsync when the store closes is answered, and kept.
    const late = store.create(node('late'));
    await store.close();
    assert.equal((await late).metadata.name, 'late');
    w.stop();
    store = SqliteStore.open({ path });
    assert.equal((await store.list('EdgeNode')).items.length, 61);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('file hub secrets: joins resolve with a credential that authenticates after a reopen; a used-up token is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-walsync-'));
  try {
    const path = join(dir, 'hub.db');
    let secrets = new HubSecrets(path);
    const { token } = secrets.createJoinToken({ unit: 'u', ttlMs: null, uses: 3 });
    const joined = await Promise.all(['a', 'b', 'c'].map((n) => secrets.joinNode(token, n)));
    await assert.rejects(secrets.joinNode(token, 'd'), /no uses left/);
    secrets.close();
    secrets = new HubSecrets(path);
    assert.deepEqual(joined.map((j) => secrets.authenticateNode(j.credential)?.node), ['a', 'b', 'c']);
    secrets.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('controller loop: a prompt trigger overtakes a pending slow one; triggers during a pass give one more pass', async () => {
  let passes = 0;
  let release: (() => void) | undefined;
  let ran: (() => void) | undefined;
  const loop = new ControllerLoop('test', async () => {
    passes++;
    ran?.();
    if (passes === 1) await new Promise<void>((r) => { release = r; });
  }, silentLogger());
  try {
    const first = new Promise<void>((r) => { ran = r; });
    loop.trigger(600_000); // would never run within the test's time
    loop.trigger(); // the default debounce wins
    await first;
    assert.equal(passes, 1);
    loop.trigger(600_000);
    loop.trigger();
    const second = new Promise<void>((r) => { ran = r; });
    release?.();
    await second;
    await loop.idle();
    assert.equal(passes, 2, 'triggers during a pass coalesce into one more pass');
  } finally {
    await loop.stop();
  }
});

test('projectForNode: one shared projection per app version and unit, showing only that unit', () => {
  const app = Object.freeze({
    apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'a', generation: 1 },
    spec: { units: { names: ['u1', 'u2'] }, template: { processes: [] }, overrides: [{ units: ['u2'] }] },
    status: { units: [{ unit: 'u1' }, { unit: 'u2' }], message: 'about u2' },
  }) as unknown as AnyObject;
  const p1 = projectForNode(app, { node: 'n1', unit: 'u1' });
  assert.equal(projectForNode(app, { node: 'n2', unit: 'u1' }), p1, 'same unit: same object (one digest)');
  const p2 = projectForNode(app, { node: 'n3', unit: 'u2' });
  assert.notEqual(p2, p1);
  assert.deepEqual((p1.spec as { units: { names: string[] } }).units.names, ['u1']);
  assert.deepEqual((p2.status as { units: { unit: string }[] }).units, [{ unit: 'u2' }]);
  assert.equal((p1.spec as { overrides?: unknown }).overrides, undefined);
  const next = { ...app, metadata: { ...app.metadata, generation: 2 } } as AnyObject;
  assert.notEqual(projectForNode(next, { node: 'n1', unit: 'u1' }), p1, 'a new app version gets a new projection');
});

test('unit controller: recount-only passes follow phases; a unit listing a node still moves and restamps it', async () => {
  const store = SqliteStore.open({ path: ':memory:' });
  const cache = new ObjectCache({ store, log: silentLogger() });
  await cache.start();
  const units = new UnitController({ store, cache, log: silentLogger() });
  try {
    await store.create(nodeUnit('a') as AnyObject);
    await store.create(nodeUnit('b') as AnyObject);
    for (const n of ['n1', 'n2']) await store.create({ ...edgeNode(n, { unit: 'a' }), spec: { unit: 'a', joinUnit: 'a' }, status: { phase: 'Pending' } } as AnyObject);
    units.start();
    const statusOf = (u: string) => (cache.get('NodeUnit', u) as NodeUnit).status?.nodes;
    await waitFor(() => statusOf('a')?.total === 2, { message: 'unit a counts its two nodes' });
    // Phase changes only: recounted (without restamping every node).
    await store.updateStatus('EdgeNode', 'n1', { phase: 'Ready' });
    await waitFor(() => statusOf('a')?.ready === 1, { message: 'unit a counts n1 Ready' });
    await store.updateStatus('EdgeNode', 'n2', { phase: 'Ready' });
    await waitFor(() => statusOf('a')?.ready === 2, { message: 'unit a counts n2 Ready' });
    // A unit change is urgent: b lists n2, which moves there and is stamped for it.
    const b = cache.get('NodeUnit', 'b') as NodeUnit;
    await store.update({ ...b, spec: { ...b.spec, nodes: ['n2'] } } as AnyObject);
    await waitFor(() => (cache.get('EdgeNode', 'n2') as EdgeNode).spec.unit === 'b' && statusOf('b')?.ready === 1 && statusOf('a')?.total === 1, { message: 'n2 moved to b and both recounted' });
    assert.equal((cache.get('EdgeNode', 'n2') as EdgeNode).metadata.labels?.['outpost.dev/unit'], 'b');
    await store.updateStatus('EdgeNode', 'n2', { phase: 'Disconnected' });
    await waitFor(() => statusOf('b')?.disconnected === 1 && statusOf('b')?.ready === 0, { message: 'unit b counts n2 Disconnected' });
  } finally {
    await units.stop();
    await cache.stop();
    await store.close();
  }
});
