import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planStep, rolloutBudget, type Slot } from '../../cloud-hub/scheduler/rollout-plan.js';
import { advanceMark, rolloutPhase, type PhaseInput } from '../../cloud-hub/scheduler/rollout-phase.js';

const old = (n: number): Slot[] => Array.from({ length: n }, (_, index) => ({ index, atTarget: false, available: true }));

/**
 * Drives a unit from all-old to done: each round plans a step, applies it, then makes the updated
 * instances ready one at a time (the agent's side). Checks availability after every change.
 * `retarget`: in that round, right after the step is applied (an update in flight), the target
 * changes (a new revision): every instance becomes old; `steps` then applies from there on.
 */
function simulate(replicas: number, budget: { maxUnavailable: number; maxSurge: number }, retarget?: { round: number; steps: boolean }): { rounds: number; maxUnavailableSeen: number; maxInstances: number; done: boolean } {
  const slots = new Map(old(replicas).map((s) => [s.index, { ...s }]));
  let maxUnavailableSeen = 0;
  let maxInstances = replicas;
  let steps = true;
  const check = () => {
    const avail = [...slots.values()].filter((s) => s.available).length;
    maxUnavailableSeen = Math.max(maxUnavailableSeen, replicas - avail);
    maxInstances = Math.max(maxInstances, slots.size);
  };
  for (let round = 1; round <= 100; round++) {
    const plan = planStep({ replicas, budget, slots: [...slots.values()], steps });
    if (plan.done) return { rounds: round, maxUnavailableSeen, maxInstances, done: true };
    for (const i of plan.delete) slots.delete(i);
    for (const i of plan.create) slots.set(i, { index: i, atTarget: true, available: false });
    for (const i of plan.update) slots.set(i, { index: i, atTarget: true, available: false });
    check();
    if (retarget?.round === round) {
      for (const s of slots.values()) s.atTarget = false;
      steps = retarget.steps;
    }
    const pending = [...slots.values()].find((s) => !s.available && (s.atTarget || !steps));
    if (pending) pending.available = true;
    check();
  }
  if (steps) throw new Error('did not finish in 100 rounds');
  return { rounds: 100, maxUnavailableSeen, maxInstances, done: false };
}

describe('rollout step math', () => {
  test('budget: defaults, percentages rounded (unavailable down, surge up), at least 1 unavailable without surge', () => {
    assert.deepEqual(rolloutBudget(undefined, 4), { maxUnavailable: 1, maxSurge: 0 });
    assert.deepEqual(rolloutBudget({ maxUnavailable: '25%' }, 10), { maxUnavailable: 2, maxSurge: 0 });
    assert.deepEqual(rolloutBudget({ maxUnavailable: '10%' }, 3), { maxUnavailable: 1, maxSurge: 0 }, 'rounded down to 0, then at least 1');
    assert.deepEqual(rolloutBudget({ maxUnavailable: 0, maxSurge: '10%' }, 3), { maxUnavailable: 0, maxSurge: 1 }, 'surge rounds up');
    assert.deepEqual(rolloutBudget({ maxUnavailable: 0, maxSurge: 0 }, 3), { maxUnavailable: 1, maxSurge: 0 });
  });

  for (const [replicas, mu, ms] of [[1, 1, 0], [3, 1, 0], [5, 2, 0], [4, 0, 1], [4, 1, 2], [6, 3, 3], [2, 0, 2]] as const) {
    test(`replicas ${replicas}, maxUnavailable ${mu}, maxSurge ${ms}: finishes, never exceeds either`, () => {
      const r = simulate(replicas, { maxUnavailable: mu, maxSurge: ms });
      assert.ok(r.maxUnavailableSeen <= mu, `unavailable reached ${r.maxUnavailableSeen}`);
      assert.ok(r.maxInstances <= replicas + ms, `instances reached ${r.maxInstances}`);
      if (mu === 1 && ms === 0) assert.ok(r.rounds >= replicas, 'one instance at a time');
    });
  }

  for (const [replicas, mu, ms] of [[3, 0, 1], [4, 1, 2], [2, 0, 2], [5, 1, 1]] as const) {
    for (let round = 1; round <= 4; round++) {
      for (const steps of [true, false]) {
        test(`replicas ${replicas}, maxUnavailable ${mu}, maxSurge ${ms}: a new target in round ${round}${steps ? '' : ' with a pause'} keeps the budget`, () => {
          const r = simulate(replicas, { maxUnavailable: mu, maxSurge: ms }, { round, steps });
          assert.ok(r.maxUnavailableSeen <= mu, `unavailable reached ${r.maxUnavailableSeen}`);
          assert.ok(r.maxInstances <= replicas + ms, `instances reached ${r.maxInstances}`);
          assert.equal(r.done, steps);
        });
      }
    }
  }

  test('a surge instance of an earlier target that pays for an update in flight stays until the update is available', () => {
    const budget = { maxUnavailable: 0, maxSurge: 1 };
    // 0 is being replaced (not available), 3 is the old target's surge (available): the new target arrives.
    const slots: Slot[] = [{ index: 0, atTarget: false, available: false }, { index: 1, atTarget: false, available: true }, { index: 2, atTarget: false, available: true }, { index: 3, atTarget: false, available: true }];
    const held = planStep({ replicas: 3, budget, slots, steps: true });
    assert.deepEqual([held.delete, held.update, held.create], [[], [0], []], 'only the unavailable one is moved on');
    const paused = planStep({ replicas: 3, budget, slots, steps: false });
    assert.deepEqual([paused.delete, paused.update], [[], []]);
    const freed = planStep({ replicas: 3, budget, slots: [{ index: 0, atTarget: true, available: true }, ...slots.slice(1)], steps: true });
    assert.deepEqual([freed.delete, freed.update], [[3], []], 'then the surge goes, before any other update');
    const unavailable = planStep({ replicas: 3, budget, slots: [...slots.slice(0, 3), { index: 3, atTarget: false, available: false }], steps: false });
    assert.deepEqual(unavailable.delete, [3], 'a surge instance that is not available goes at once');
  });

  test('a step never starts while the unit is already at its unavailable budget', () => {
    const slots: Slot[] = [{ index: 0, atTarget: true, available: false }, { index: 1, atTarget: false, available: true }, { index: 2, atTarget: false, available: true }];
    assert.deepEqual(planStep({ replicas: 3, budget: { maxUnavailable: 1, maxSurge: 0 }, slots, steps: true }).update, []);
    const two = planStep({ replicas: 3, budget: { maxUnavailable: 2, maxSurge: 0 }, slots, steps: true });
    assert.deepEqual(two.update, [1], 'exactly one more');
  });

  test('old instances that are not available are replaced first, at no cost', () => {
    const slots: Slot[] = [{ index: 0, atTarget: false, available: true }, { index: 1, atTarget: false, available: false }, { index: 2, atTarget: false, available: false }];
    const plan = planStep({ replicas: 3, budget: { maxUnavailable: 1, maxSurge: 0 }, slots, steps: true });
    assert.deepEqual(plan.update, [1, 2], 'the available one must keep serving');
  });

  test('missing replicas are created at once (first rollout); steps:false updates and surges nothing', () => {
    assert.deepEqual(planStep({ replicas: 3, budget: { maxUnavailable: 1, maxSurge: 0 }, slots: [], steps: true }).create, [0, 1, 2]);
    const paused = planStep({ replicas: 2, budget: { maxUnavailable: 1, maxSurge: 1 }, slots: [{ index: 0, atTarget: false, available: true }], steps: false });
    assert.deepEqual([paused.update, paused.create], [[], [1]]);
  });

  test('surge instances get indexes >= replicas and are deleted once the unit is done', () => {
    const first = planStep({ replicas: 2, budget: { maxUnavailable: 0, maxSurge: 1 }, slots: old(2), steps: true });
    assert.deepEqual([first.create, first.update], [[2], []]);
    const done = planStep({ replicas: 2, budget: { maxUnavailable: 0, maxSurge: 1 }, slots: [0, 1, 2].map((index) => ({ index, atTarget: true, available: true })), steps: true });
    assert.deepEqual([done.delete, done.done], [[2], false]);
  });
});

describe('rollout progress mark', () => {
  test('only forward moves count; a new rollout or a missing mark starts over', () => {
    const r = 'r2/abc';
    assert.equal(advanceMark(undefined, { rollout: r, updated: 1, available: 0 }).progressed, true);
    const one = advanceMark({ rollout: r, updated: 1, available: 1 }, { rollout: r, updated: 1, available: 0 });
    assert.deepEqual([one.progressed, one.mark], [false, { rollout: r, updated: 1, available: 1 }], 'a flap back is no progress, and the high mark stays');
    assert.equal(advanceMark(one.mark, { rollout: r, updated: 1, available: 1 }).progressed, false, 'flapping forward again is not either');
    assert.equal(advanceMark(one.mark, { rollout: r, updated: 2, available: 1 }).progressed, true);
    assert.equal(advanceMark(one.mark, { rollout: 'r3/abc', updated: 0, available: 0 }).progressed, true);
  });
});

describe('rollout phase', () => {
  const base: PhaseInput = {
    now: Date.parse('2026-01-01T00:10:00Z'), revision: 2, prev: { unit: 'a', desired: 2, scheduled: 2, ready: 1, updated: 1, revision: 1, updateRevision: 2, rollout: 'Progressing', progressAt: '2026-01-01T00:00:00.000Z', targetHash: 't1' },
    done: false, allAtTarget: false, paused: false, hasReadyNode: true, progressed: false, targetHash: 't1', deadlineSeconds: 300, describeStuck: () => 'stuck',
  };

  test('no progress past the deadline: Failed, no steps, and it sticks until the revision changes', () => {
    const failed = rolloutPhase(base);
    assert.equal(failed.phase, 'Failed');
    assert.equal(failed.steps, false);
    assert.match(failed.message ?? '', /no progress for 300s: stuck/);
    const later = rolloutPhase({ ...base, prev: { ...base.prev!, rollout: 'Failed', ...(failed.message ? { message: failed.message } : {}) }, progressed: true });
    assert.equal(later.phase, 'Failed');
    const undone = rolloutPhase({ ...base, revision: 3, prev: { ...base.prev!, rollout: 'Failed' } });
    assert.equal(undone.phase, 'Progressing');
    assert.equal(undone.steps, true);
    const configFixed = rolloutPhase({ ...base, targetHash: 't2', prev: { ...base.prev!, rollout: 'Failed' } });
    assert.equal(configFixed.phase, 'Progressing', 'a config change (same revision) is a new rollout too');
  });

  test('progress restarts the clock; within the deadline it is Progressing with a wake-up time', () => {
    const moved = rolloutPhase({ ...base, progressed: true });
    assert.equal(moved.phase, 'Progressing');
    assert.equal(moved.progressAt, new Date(base.now).toISOString());
    const early = rolloutPhase({ ...base, now: Date.parse('2026-01-01T00:01:00Z') });
    assert.equal(early.phase, 'Progressing');
    assert.equal(early.deadlineAt, Date.parse('2026-01-01T00:05:00Z'));
  });

  test('paused and waiting take no deadline; complete sticks while specs are on target', () => {
    assert.deepEqual([rolloutPhase({ ...base, paused: true }).phase, rolloutPhase({ ...base, paused: true }).steps], ['Paused', false]);
    assert.equal(rolloutPhase({ ...base, hasReadyNode: false }).phase, 'Waiting');
    const complete = rolloutPhase({ ...base, done: true });
    assert.deepEqual([complete.phase, complete.completedRevision], ['Complete', 2]);
    const crashedLater = rolloutPhase({ ...base, allAtTarget: true, prev: { ...base.prev!, rollout: 'Complete' } });
    assert.equal(crashedLater.phase, 'Complete');
  });
});
