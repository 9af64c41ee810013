import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaderElector, checkTimings } from '../../cloud-hub/kube/leader-election.js';
import { isOutpostError } from '../../shared/errors.js';
import { silentLogger } from '../../shared/logger.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { MemoryLease } from '../helpers/memory-lease.js';

/** Lets the electors' promise chains run between clock steps. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Two or more replicas on one Lease and one fake clock; records who leads when. */
function cluster(ids: string[]) {
  const clock = new ManualClock();
  const lease = new MemoryLease();
  const events: { at: number; id: string; what: 'start' | 'stop' }[] = [];
  const leading = new Set<string>();
  let overlap = false;
  const electors = new Map(ids.map((id) => [id, new LeaderElector({
    client: lease.client(id), clock, log: silentLogger(),
    onStartedLeading: () => {
      if (leading.size > 0) overlap = true;
      leading.add(id);
      events.push({ at: clock.now(), id, what: 'start' });
    },
    onStoppedLeading: () => {
      leading.delete(id);
      events.push({ at: clock.now(), id, what: 'stop' });
    },
  }, { identity: id })]));
  const get = (id: string) => electors.get(id) as LeaderElector;
  /** Advances the clock in 100 ms steps, letting requests complete in between. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      clock.advance(100);
      await settle();
      if (leading.size > 1) overlap = true;
    }
  };
  return { clock, lease, events, leading, get, run, overlap: () => overlap };
}

describe('leader election on a Lease (fake clock)', () => {
  test('the first replica creates the Lease and leads; the other follows while it renews', async () => {
    const c = cluster(['a', 'b']);
    c.get('a').start();
    await c.run(100);
    c.get('b').start();
    await c.run(60_000);
    assert.deepEqual([...c.leading], ['a']);
    assert.equal(c.get('b').isLeader, false);
    assert.equal(c.get('b').leader, 'a', 'the follower observes the holder');
    assert.equal(c.lease.current()?.record.holderIdentity, 'a');
    assert.equal(c.lease.current()?.record.leaseDurationSeconds, 12);
    assert.equal(c.lease.current()?.record.leaseTransitions, 0);
    assert.equal(c.overlap(), false);
    // Renewing every 2 s for a minute is about 30 writes, not one per check of each replica.
    assert.ok(c.lease.writes <= 32, `writes ${c.lease.writes}`);
  });

  test('a leader that cannot renew stops leading before the follower takes over (no overlap)', async () => {
    const c = cluster(['a', 'b']);
    c.get('a').start();
    await c.run(100);
    c.get('b').start();
    await c.run(5_000);
    const cutAt = c.clock.now();
    c.lease.faults.set('a', 'hang'); // a's requests never answer (partitioned or hung API connection)
    await c.run(30_000);
    const aStop = c.events.find((e) => e.id === 'a' && e.what === 'stop');
    const bStart = c.events.find((e) => e.id === 'b' && e.what === 'start');
    assert.ok(aStop, 'a stopped leading on its own watchdog');
    assert.ok(bStart, 'b took over');
    assert.ok(aStop.at < bStart.at, `a stopped at ${aStop.at} before b started at ${bStart.at}`);
    assert.ok(aStop.at - cutAt <= 8_000, 'a stopped within its renew deadline (8 s on the fake clock)');
    assert.ok(bStart.at - cutAt <= 12_000 + 2_000, 'b took over within lease duration plus one retry period');
    assert.equal(c.lease.current()?.record.holderIdentity, 'b');
    assert.equal(c.lease.current()?.record.leaseTransitions, 1);
    assert.equal(c.overlap(), false);
  });

  test('a clean stop releases the Lease and the follower takes it at its next attempt', async () => {
    const c = cluster(['a', 'b']);
    c.get('a').start();
    await c.run(100);
    c.get('b').start();
    await c.run(5_000);
    const stopAt = c.clock.now();
    await c.get('a').stop();
    assert.equal(c.get('a').state, 'stopped');
    assert.equal(c.lease.current()?.record.holderIdentity, '', 'released');
    await c.run(3_000);
    const bStart = c.events.find((e) => e.id === 'b' && e.what === 'start');
    assert.ok(bStart && bStart.at - stopAt <= 2_100, `b took the released Lease within one retry period (at ${bStart?.at})`);
    assert.deepEqual(c.events.map((e) => `${e.id}:${e.what}`), ['a:start', 'a:stop', 'b:start']);
  });

  test('a leader that finds another holder in the Lease steps down at once', async () => {
    const c = cluster(['a']);
    c.get('a').start();
    await c.run(1_000);
    const intruder = c.lease.client('x');
    const now = await intruder.get();
    assert.ok(now);
    await intruder.update({ ...now.record, holderIdentity: 'x', leaseTransitions: now.record.leaseTransitions + 1 }, now.resourceVersion);
    await c.run(2_100);
    assert.equal(c.get('a').isLeader, false);
    assert.equal(c.get('a').leader, 'x');
    assert.deepEqual(c.events.map((e) => e.what), ['start', 'stop']);
  });

  test('failures shorter than the renew deadline (minus a retry period) keep the leader leading', async () => {
    const c = cluster(['a', 'b']);
    c.get('a').start();
    await c.run(100);
    c.get('b').start();
    await c.run(3_000);
    c.lease.faults.set('a', 'fail');
    // 4 s of failures: with 2 s between attempts, the last success is at most 6 s old when they end.
    await c.run(4_000);
    c.lease.faults.delete('a');
    await c.run(20_000);
    assert.deepEqual(c.events.map((e) => `${e.id}:${e.what}`), ['a:start'], JSON.stringify(c.events));
  });

  test('the follower that restarts does not trust renewTime: it waits a full duration from what it observed', async () => {
    const c = cluster(['a', 'b']);
    c.get('a').start();
    await c.run(1_000);
    c.lease.faults.set('a', 'hang');
    await c.run(11_000); // the Lease is 11 s old by the Lease's own renewTime
    c.get('b').start(); // b sees it for the first time now
    await c.run(11_000);
    assert.equal(c.get('b').isLeader, false, 'b waits 12 s from its own first observation');
    await c.run(3_000);
    assert.equal(c.get('b').isLeader, true);
  });

  test('timings that would allow two leaders are refused', () => {
    assert.throws(() => checkTimings(10_000, 10_000, 2_000), (e) => isOutpostError(e, 'BAD_REQUEST') && /renew deadline/.test(e.message));
    assert.throws(() => checkTimings(15_000, 10_000, 10_000), (e) => isOutpostError(e, 'BAD_REQUEST') && /retry period/.test(e.message));
    assert.throws(() => checkTimings(12_500, 8_000, 2_000), (e) => isOutpostError(e, 'BAD_REQUEST') && /whole seconds/.test(e.message));
    assert.throws(() => checkTimings(-1, 8_000, 2_000), (e) => isOutpostError(e, 'BAD_REQUEST'));
    assert.doesNotThrow(() => checkTimings(12_000, 8_000, 2_000));
  });
});
