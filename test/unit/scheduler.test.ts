import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { createHubMetrics } from '../../cloud-hub/metrics.js';
import { Scheduler } from '../../cloud-hub/scheduler/scheduler.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import type { EdgeApp, Instance } from '../../shared/api/index.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import { edgeApp, edgeNode, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';
import type { Registry } from 'prom-client';

describe('scheduler', () => {
  let store: SqliteStore;
  let cache: ObjectCache;
  let scheduler: Scheduler;
  let registry: Registry;
  const placement = () => Object.fromEntries((cache.list('Instance') as Instance[]).map((i) => [i.metadata.name, i.spec.node]));
  const setPhase = (node: string, phase: 'Ready' | 'Disconnected') => store.updateStatus('EdgeNode', node, { phase });
  const settle = async () => { await new Promise((r) => setTimeout(r, 30)); await scheduler.idle(); };

  beforeEach(async () => {
    store = SqliteStore.open({ path: ':memory:' });
    cache = new ObjectCache({ store, log: silentLogger() });
    await cache.start();
    registry = createRegistry('t');
    scheduler = new Scheduler({ store, cache, log: silentLogger(), metrics: createHubMetrics(registry) }, { debounceMs: 5 });
    scheduler.start();
    for (const u of ['site-a', 'site-b']) await store.create(nodeUnit(u, { labels: { tier: u === 'site-a' ? 'shop' : 'tower' } }));
    for (const [n, u] of [['a1', 'site-a'], ['a2', 'site-a'], ['a3', 'site-a'], ['b1', 'site-b']] as const) {
      await store.create(edgeNode(n, { unit: u }));
      await setPhase(n, 'Ready');
    }
  });

  test('places replicasPerUnit instances per selected unit, spread across ready nodes', async () => {
    await store.create(edgeApp('web', { units: ['site-a'], replicasPerUnit: 3 }));
    await store.create(edgeApp('cam', { units: [], unitSelector: { tier: 'tower' }, replicasPerUnit: 2 }));
    await settle();
    const p = placement();
    assert.deepEqual(new Set([p['web-site-a-0'], p['web-site-a-1'], p['web-site-a-2']]), new Set(['a1', 'a2', 'a3']), 'one per node');
    assert.equal(p['cam-site-b-0'], 'b1');
    assert.equal(p['cam-site-b-1'], 'b1');
    assert.equal(Object.keys(p).length, 5);
    const app = cache.get('EdgeApp', 'web') as EdgeApp;
    assert.deepEqual(app.status?.units?.map((u) => [u.unit, u.desired, u.scheduled]), [['site-a', 3, 3]]);
    await scheduler.stop();
    await store.close();
  });

  test('a disconnected node keeps its instances; only a deleted node loses them; unchanged apps do not move', async () => {
    await store.create(edgeApp('web', { units: ['site-a'], replicasPerUnit: 2 }));
    await settle();
    const before = placement();
    const victim = before['web-site-a-0'] ?? '';
    await setPhase(victim, 'Disconnected');
    await store.create(edgeApp('other', { units: ['site-b'] }));
    await settle();
    assert.equal(placement()['web-site-a-0'], victim, 'disconnected is not a reason to move');
    assert.equal(placement()['web-site-a-1'], before['web-site-a-1'], 'stable placement');
    await store.delete('EdgeNode', victim);
    await waitFor(() => placement()['web-site-a-0'] !== victim, { message: 'rescheduled off the deleted node' });
    assert.notEqual(placement()['web-site-a-0'], '');
    await scheduler.stop();
    await store.close();
  });

  test('colliding instance names are reported in the app status, without a retry loop', async () => {
    await store.create(nodeUnit('eu-shop'));
    await store.create(nodeUnit('shop'));
    await store.create(edgeNode('e1', { unit: 'eu-shop' }));
    await setPhase('e1', 'Ready');
    await store.create(edgeApp('web', { units: ['eu-shop'] })); // web-eu-shop-0
    await settle();
    await store.create(edgeApp('web-eu', { units: ['shop'] })); // web-eu-shop-0 as well
    await settle();
    const app = cache.get('EdgeApp', 'web-eu') as EdgeApp;
    assert.match(app.status?.message ?? '', /instance name web-eu-shop-0 is taken by app web/);
    assert.equal((cache.get('Instance', 'web-eu-shop-0') as Instance).spec.app, 'web');
    assert.deepEqual(app.status?.units?.map((u) => u.scheduled), [0]);
    const runs = async () => (await registry.getSingleMetric('outpost_hub_scheduler_runs_total')?.get())?.values[0]?.value ?? 0;
    const before = await runs();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok((await runs()) - before <= 1, 'no spinning');
    await scheduler.stop();
    await store.close();
  });

  test('scaling down and unselecting a unit delete instances; no ready node leaves them pending', async () => {
    await store.create(edgeApp('web', { units: ['site-a', 'site-b'], replicasPerUnit: 2 }));
    await settle();
    assert.equal(Object.keys(placement()).length, 4);
    await store.update(edgeApp('web', { units: ['site-a'], replicasPerUnit: 1 }));
    await settle();
    assert.deepEqual(Object.keys(placement()), ['web-site-a-0']);
    await setPhase('b1', 'Disconnected');
    await store.update(edgeApp('web', { units: ['site-b'], replicasPerUnit: 1 }));
    await settle();
    assert.deepEqual(placement(), { 'web-site-b-0': '' }, 'pending until a node of the unit is ready');
    await setPhase('b1', 'Ready');
    await waitFor(() => placement()['web-site-b-0'] === 'b1', { message: 'placed once ready' });
    await scheduler.stop();
    await store.close();
  });
});
