import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { createHubMetrics } from '../../cloud-hub/metrics.js';
import { Scheduler } from '../../cloud-hub/scheduler/scheduler.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import { rolloutVerdict } from '../../cli/commands/rollout-progress.js';
import type { EdgeApp, Instance, InstanceStatus } from '../../shared/api/index.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import { edgeApp, edgeNode, nodeUnit } from '../helpers/objects.js';

// What a rollout must not do when the new revision is bad: the scheduler over a real (in-memory
// SQLite) store, with the agents' side played by the test through instance statuses.
describe('scheduler: rollouts with a bad revision', () => {
  let store: SqliteStore;
  let cache: ObjectCache;
  let scheduler: Scheduler;
  let clock = 0;
  let configs = 'c1';
  const insts = () => (cache.list('Instance') as Instance[]).sort((a, b) => a.spec.index - b.spec.index);
  const app = () => cache.get('EdgeApp', 'web') as EdgeApp;
  const unit = () => app().status?.units?.find((u) => u.unit === 'site-a');
  const argOf = (i: Instance) => i.spec.template.processes?.[0]?.args?.[0];
  const settle = async () => { await new Promise((r) => setTimeout(r, 30)); await scheduler.idle(); };
  const startScheduler = () => {
    scheduler = new Scheduler({ store, cache, log: silentLogger(), metrics: createHubMetrics(createRegistry('t')), now: () => clock, configsHash: () => configs }, { debounceMs: 5 });
    scheduler.start();
  };
  /** Every placed instance runs its spec with the status `status(i)` gives. */
  const report = async (status: (i: Instance) => Partial<InstanceStatus> = () => ({})) => {
    for (const i of insts()) {
      if (!i.spec.node) continue;
      const st: InstanceStatus = { phase: 'Running', ready: true, restarts: 0, startedAt: new Date(clock).toISOString(), templateHash: i.spec.templateHash, ...status(i) };
      if (i.status?.templateHash !== st.templateHash || i.status?.ready !== st.ready || i.status?.restarts !== st.restarts) await store.updateStatus('Instance', i.metadata.name, st);
    }
    await settle();
  };
  const update = async (mutate: (a: EdgeApp) => void) => {
    const a = structuredClone(app());
    mutate(a);
    await store.update(a);
    await settle();
  };
  const tick = async (ms: number) => { clock += ms; scheduler.poke(); await settle(); };
  const deployV1 = async (replicas: number, rollout: NonNullable<EdgeApp['spec']['rollout']>, restartOnConfigChange = false) => {
    const a = edgeApp('web', { units: ['site-a'], replicasPerUnit: replicas, template: { command: 'sleep', args: ['v1'] } });
    a.spec.rollout = rollout;
    if (restartOnConfigChange) a.spec.restartOnConfigChange = true;
    await store.create(a);
    await settle();
    await report();
    if (rollout.minReadySeconds) await tick(rollout.minReadySeconds * 1000);
    assert.equal(unit()?.rollout, 'Complete');
  };

  beforeEach(async () => {
    clock = Date.parse('2026-01-01T00:00:00Z');
    configs = 'c1';
    store = SqliteStore.open({ path: ':memory:' });
    cache = new ObjectCache({ store, log: silentLogger() });
    await cache.start();
    startScheduler();
    await store.create(nodeUnit('site-a'));
    for (const n of ['a1', 'a2', 'a3']) {
      await store.create(edgeNode(n, { unit: 'site-a' }));
      await store.updateStatus('EdgeNode', n, { phase: 'Ready' });
    }
  });
  afterEach(async () => {
    await scheduler.stop();
    await store.close();
  });

  test('a crash-looping revision, ready for a moment between restarts, fails at the deadline after one step', async () => {
    await deployV1(3, { maxUnavailable: 1, progressDeadlineSeconds: 30 });
    await update((a) => { a.spec.template.processes![0]!.args = ['crash']; });
    for (let round = 1; round <= 20; round++) {
      // Up, ready for a moment, down again: restarts grow, readiness flips every round.
      await report((i) => (argOf(i) === 'crash' ? { ready: round % 2 === 0, restarts: Math.ceil(round / 2) } : {}));
      await tick(10_000);
    }
    assert.equal(unit()?.rollout, 'Failed');
    assert.match(unit()?.message ?? '', /no progress for 30s: 1 of 3 instances updated, 0 ready on the new revision; web-site-a-0: (Running, not ready|ready, but restarted \d+ time\(s\): counts once up for 30s)/);
    assert.deepEqual(insts().map(argOf), ['crash', 'v1', 'v1'], 'the old instances keep serving');
  });

  test('an updated instance that restarted counts after 30 s up; minReadySeconds holds each step', async () => {
    await deployV1(2, { maxUnavailable: 1, minReadySeconds: 20 });
    await update((a) => { a.spec.template.processes![0]!.args = ['v2']; });
    await report((i) => (argOf(i) === 'v2' ? { restarts: 1 } : {}));
    assert.deepEqual(insts().map(argOf), ['v2', 'v1']);
    await tick(20_000);
    assert.deepEqual(insts().map(argOf), ['v2', 'v1'], 'restarted: 20 s is not enough');
    await tick(10_000);
    assert.deepEqual(insts().map(argOf), ['v2', 'v2'], 'up for 30 s: the next step goes');
    await report();
    assert.equal(unit()?.rollout, 'Progressing', 'the last one is ready but not for 20 s yet');
    await tick(20_000);
    assert.deepEqual([unit()?.rollout, unit()?.revision], ['Complete', 2]);
  });

  test('a Failed unit creates and moves instances at the revision it last completed', async () => {
    await deployV1(3, { maxUnavailable: 1, progressDeadlineSeconds: 5 });
    await update((a) => { a.spec.template.processes![0]!.args = ['bad']; });
    await report((i) => ({ ready: argOf(i) !== 'bad' }));
    await tick(6_000);
    assert.equal(unit()?.rollout, 'Failed');
    await update((a) => { a.spec.replicasPerUnit = 5; });
    assert.deepEqual(insts().map(argOf), ['bad', 'v1', 'v1', 'v1', 'v1']);
    assert.deepEqual(insts().map((i) => i.spec.revision), [2, 1, 1, 1, 1]);
    // The node of an old instance goes away: it moves at the old revision too.
    const victim = insts().find((i) => argOf(i) === 'v1' && i.spec.index === 1)!;
    await store.delete('EdgeNode', victim.spec.node);
    await settle();
    const moved = insts().find((i) => i.spec.index === 1)!;
    assert.notEqual(moved.spec.node, victim.spec.node);
    assert.equal(argOf(moved), 'v1');
    const bad = insts()[0]!;
    await store.delete('EdgeNode', bad.spec.node);
    await settle();
    assert.deepEqual([insts()[0]?.spec.node !== bad.spec.node, argOf(insts()[0]!), insts()[0]?.spec.revision], [true, 'v1', 1], 'a moved instance of the failed revision goes back to the old one');
    assert.equal(unit()?.rollout, 'Failed');
  });

  test('an override patch that does not apply fails the unit with the reason (rollout status exits 1, not by timeout)', async () => {
    await deployV1(1, {});
    // Valid against the template (apply-time check), but not after the first override.
    await update((a) => { a.spec.overrides = [{ units: { names: ['site-a'] }, args: ['v2'] }, { units: { names: ['site-a'] }, patches: [{ op: 'test', path: '/processes/0/args/0', value: 'v1' }] }]; });
    assert.equal(unit()?.rollout, 'Failed');
    assert.match(unit()?.message ?? '', /override patch .* does not apply to unit site-a/);
    const verdict = rolloutVerdict(app());
    assert.equal(verdict.state, 'failed');
    await update((a) => { a.spec.overrides = [{ units: { names: ['site-a'] }, args: ['v2'] }]; });
    await report();
    assert.equal(unit()?.rollout, 'Complete', 'a fixed override is a new rollout');
  });

  test('a config fix made while the hub is down lifts a Failed unit (the target hash is kept in the status)', async () => {
    await deployV1(2, { maxUnavailable: 1, progressDeadlineSeconds: 5 }, true);
    configs = 'c2-bad';
    scheduler.poke();
    await settle();
    await report((i) => ({ ready: i.spec.templateHash === insts()[1]?.spec.templateHash }));
    await tick(6_000);
    assert.equal(unit()?.rollout, 'Failed');
    await scheduler.stop();
    configs = 'c3-fixed';
    startScheduler();
    await settle();
    assert.equal(unit()?.rollout, 'Progressing');
    await report();
    await report();
    assert.equal(unit()?.rollout, 'Complete');
  });
});
