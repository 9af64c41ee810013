import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { createHubMetrics } from '../../cloud-hub/metrics.js';
import { Scheduler } from '../../cloud-hub/scheduler/scheduler.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import type { AppRevision, EdgeApp, EdgeNode, Instance, NodeUnit } from '../../shared/api/index.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import { edgeApp, edgeNode, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

// The scheduler over a real (in-memory SQLite) store, with the agents' side played by the test:
// `report` makes instances run their spec and sets their readiness.
describe('scheduler: rollouts, variants, revisions', () => {
  let store: SqliteStore;
  let cache: ObjectCache;
  let scheduler: Scheduler;
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const insts = (unit?: string) => (cache.list('Instance') as Instance[]).filter((i) => !unit || i.spec.unit === unit).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const app = (name = 'web') => cache.get('EdgeApp', name) as EdgeApp;
  const unitStatus = (unit: string, name = 'web') => app(name).status?.units?.find((u) => u.unit === unit);
  const settle = async () => { await new Promise((r) => setTimeout(r, 30)); await scheduler.idle(); };
  /** Every instance runs its spec; `ready(i)` decides readiness. */
  const report = async (ready: (i: Instance) => boolean = () => true) => {
    for (const i of insts()) {
      const st = { phase: 'Running' as const, ready: ready(i), restarts: 0, templateHash: i.spec.templateHash };
      if (i.spec.node && (i.status?.templateHash !== st.templateHash || i.status.ready !== st.ready)) await store.updateStatus('Instance', i.metadata.name, st);
    }
    await settle();
  };
  const update = async (mutate: (a: EdgeApp) => void) => {
    const a = structuredClone(app());
    mutate(a);
    await store.update(a);
    await settle();
  };

  beforeEach(async () => {
    store = SqliteStore.open({ path: ':memory:' });
    cache = new ObjectCache({ store, log: silentLogger() });
    await cache.start();
    scheduler = new Scheduler({ store, cache, log: silentLogger(), metrics: createHubMetrics(createRegistry('t')), now: () => clock }, { debounceMs: 5 });
    scheduler.start();
    await store.create(nodeUnit('site-a', { labels: { tier: 'shop' } }));
    await store.create(nodeUnit('site-b'));
    for (const [n, u] of [['a1', 'site-a'], ['a2', 'site-a'], ['a3', 'site-a'], ['b1', 'site-b']] as const) {
      await store.create(edgeNode(n, { unit: u }));
      await store.updateStatus('EdgeNode', n, { phase: 'Ready' });
    }
  });
  afterEach(async () => {
    await scheduler.stop();
    await store.close();
  });

  test('a template change rolls one instance at a time per unit, waiting for readiness; revisions recorded', async () => {
    await store.create(edgeApp('web', { units: ['site-a', 'site-b'], replicasPerUnit: 3, template: { command: 'sleep', args: ['1'] } }));
    await settle();
    assert.equal(insts().length, 6, 'first rollout creates everything at once');
    await report();
    assert.deepEqual([unitStatus('site-a')?.rollout, unitStatus('site-a')?.revision, app().status?.revision], ['Complete', 1, 1]);
    const v1 = insts('site-a')[0]?.spec.templateHash;

    await update((a) => { a.spec.template.processes![0]!.args = ['2']; });
    assert.equal(app().status?.revision, 2);
    assert.deepEqual((cache.list('AppRevision') as AppRevision[]).map((r) => r.metadata.name).sort(), ['web-1', 'web-2']);
    const changed = () => insts('site-a').filter((i) => i.spec.templateHash !== v1).length;
    assert.equal(changed(), 1, 'one step in site-a');
    assert.equal(insts('site-b').filter((i) => i.spec.templateHash !== v1).length, 1, 'site-b rolls in parallel');
    assert.equal(unitStatus('site-a')?.rollout, 'Progressing');
    await report((i) => i.spec.revision === 1);
    assert.equal(changed(), 1, 'the new instance is not ready: no second step');
    for (let step = 2; step <= 3; step++) {
      await report();
      assert.equal(changed(), step);
    }
    await report();
    assert.deepEqual([unitStatus('site-a')?.rollout, unitStatus('site-a')?.revision, unitStatus('site-a')?.updated, unitStatus('site-a')?.available], ['Complete', 2, 3, 3]);
    assert.ok(insts().every((i) => i.spec.revision === 2));
  });

  test('no progress within the deadline fails the unit; undo (the old content) restores it', async () => {
    await store.create(edgeApp('web', { units: ['site-a'], replicasPerUnit: 2, template: { command: 'sleep', args: ['1'] } }));
    await settle();
    await report();
    const good = structuredClone(app().spec.template);
    await update((a) => { a.spec.template.processes![0]!.args = ['bad']; a.spec.rollout = { progressDeadlineSeconds: 60 }; });
    await report((i) => i.spec.revision === 1);
    assert.equal(unitStatus('site-a')?.rollout, 'Progressing');
    clock += 61_000;
    scheduler.poke();
    await settle();
    assert.equal(unitStatus('site-a')?.rollout, 'Failed');
    assert.match(unitStatus('site-a')?.message ?? '', /no progress for 60s: 1 of 2 instances updated, 0 ready on the new revision; web-site-a-0: Running, not ready/);
    assert.equal(insts().filter((i) => i.spec.revision === 1).length, 1, 'the old instance keeps serving');

    await update((a) => { a.spec.template = good; });
    assert.equal(app().status?.revision, 3, 'the old content under a new number');
    await report();
    await report();
    assert.deepEqual([unitStatus('site-a')?.rollout, unitStatus('site-a')?.revision], ['Complete', 3]);
    assert.deepEqual((cache.list('AppRevision') as AppRevision[]).map((r) => r.metadata.name).sort(), ['web-2', 'web-3']);
  });

  test('paused: no steps until resumed', async () => {
    await store.create(edgeApp('web', { units: ['site-a'], replicasPerUnit: 2 }));
    await settle();
    await report();
    await update((a) => { a.spec.template.processes![0]!.args = ['x']; a.spec.rollout = { paused: true }; });
    assert.equal(unitStatus('site-a')?.rollout, 'Paused');
    assert.ok(insts().every((i) => i.spec.revision === 1));
    await update((a) => { a.spec.rollout = { paused: false }; });
    assert.equal(insts().filter((i) => i.spec.revision === 2).length, 1);
  });

  test('overrides with {{unit}} and {{node}}; a bad patch marks only its unit; unknown unit names warn', async () => {
    const a = edgeApp('web', { units: ['site-a', 'site-b', 'gone'], template: { command: 'echo', args: ['{{unit}}/{{node}}'], env: { A: 'base' } } });
    a.spec.overrides = [
      { units: { names: ['site-b'] }, env: { A: 'b-{{unit}}' }, replicas: 2 },
      { units: { names: ['nowhere'] }, env: { A: 'x' } },
    ];
    await store.create(a);
    await settle();
    const byName = Object.fromEntries(insts().map((i) => [i.metadata.name, [i.spec.template.processes?.[0]?.args?.[0], i.spec.template.processes?.[0]?.env?.['A']]]));
    assert.deepEqual(byName['web-site-b-0'], ['site-b/b1', 'b-site-b']);
    assert.deepEqual(byName['web-site-b-1'], ['site-b/b1', 'b-site-b']);
    assert.equal(byName['web-site-a-0']?.[1], 'base');
    assert.deepEqual(app().status?.warnings, ['spec.units.names: unit "gone" does not exist', 'spec.overrides[1] targets unit "nowhere", which does not exist']);

    // Valid against the base template (apply-time check), but not after site-b's own override.
    await update((x) => { x.spec.overrides = [{ units: { names: ['site-b'] }, env: { A: 'b' } }, { units: { names: ['site-a', 'site-b'] }, patches: [{ op: 'test', path: '/processes/0/env/A', value: 'base' }] }]; });
    assert.match(unitStatus('site-b')?.message ?? '', /override patch \/spec\/overrides\/1\/patches\/0 does not apply to unit site-b/);
    assert.equal(unitStatus('site-a')?.message, undefined);
    assert.equal(insts('site-b').length, 2, 'left as they were');
    assert.equal(insts('site-a').length, 1);
  });

  test('a unit gaining the selected label gets the app; losing it removes it; revisions go with the app', async () => {
    await store.create(edgeApp('web', { units: [], unitSelector: { tier: 'shop' } }));
    await settle();
    assert.deepEqual(insts().map((i) => i.spec.unit), ['site-a']);
    const b = cache.get('NodeUnit', 'site-b')!;
    await store.update({ ...b, metadata: { ...b.metadata, labels: { tier: 'shop' } } });
    await settle();
    assert.deepEqual(insts().map((i) => i.spec.unit), ['site-a', 'site-b']);
    await store.update({ ...b, metadata: { ...cache.get('NodeUnit', 'site-b')!.metadata, labels: {} } });
    await settle();
    assert.deepEqual(insts().map((i) => i.spec.unit), ['site-a']);
    await store.delete('EdgeApp', 'web');
    await waitFor(() => cache.list('AppRevision').length === 0 && insts().length === 0, { message: 'revisions and instances deleted with the app' });
  });

  test('taints without toleration and cordon leave instances unplaced with a reason; running ones stay', async () => {
    const n = cache.get('EdgeNode', 'b1') as EdgeNode;
    await store.update({ ...n, spec: { ...n.spec, taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] } });
    await store.create(edgeApp('web', { units: ['site-b'] }));
    await settle();
    assert.equal(insts()[0]?.spec.node, '');
    assert.match(app().status?.message ?? '', /no node of unit site-b fits: 1 tainted dedicated=gpu:NoSchedule/);
    await update((a) => { a.spec.template.tolerations = [{ key: 'dedicated', operator: 'Exists' }]; });
    assert.equal(insts()[0]?.spec.node, 'b1');

    const u = cache.get('NodeUnit', 'site-b') as NodeUnit;
    await store.update({ ...u, spec: { ...(u.spec ?? {}), cordon: true } });
    await update((a) => { a.spec.replicasPerUnit = 2; });
    assert.deepEqual(insts().map((i) => i.spec.node), ['b1', ''], 'the running one stays, the new one waits');
    assert.match(app().status?.message ?? '', /unit site-b is cordoned/);
  });
});
