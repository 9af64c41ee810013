// The chaos harness's own logic, without processes: the seeded plans are replayable, and the
// restart accounting tells legitimate restarts from restarts without cause.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accountInstance } from '../../chaos/accounting.js';
import type { CrashRecord } from '../../chaos/faults.js';
import { planFaults } from '../../chaos/faults.js';
import type { StartRecord } from '../../chaos/markers.js';
import type { InstanceVersion } from '../../chaos/observer.js';
import { resolve } from 'node:path';
import { parseChaosArgs, REPORT_FILE } from '../../chaos/main.js';
import { Rng } from '../../chaos/rng.js';
import { planWorkload } from '../../chaos/workload.js';

const start = (gen: string, pid: number, node = 'n1'): StartRecord => ({ node, instance: 'app-u-0', gen, pid });
const version = (gen: string, uid = 'u1', node = 'n1'): InstanceVersion => ({ node, uid, templateHash: `h-${gen}`, gen });
const crash = (pid: number, node = 'n1'): CrashRecord => ({ atMs: 0, pid, instance: 'app-u-0', node, gen: 'g1' });

describe('chaos harness', () => {
  test('the same seed gives the same plans; another seed does not', () => {
    const agents = [0, 1, 2, 3].map((i) => ({ name: `edge-${i}`, unit: `unit-${i % 2}` }));
    const plan = (seed: number) => ({
      faults: planFaults(new Rng(seed).fork('faults'), { durationMs: 30_000, agents }),
      workload: planWorkload(new Rng(seed).fork('workload'), { durationMs: 30_000, units: 2 }),
    });
    assert.deepEqual(plan(42), plan(42));
    assert.notDeepEqual(plan(42).faults, plan(43).faults);
    const kinds = new Set(plan(42).faults.map((f) => f.kind));
    assert.ok(kinds.size >= 5, `several fault kinds in 30 s: ${[...kinds].join(', ')}`);
  });

  test('faults never overlap on one target', () => {
    const agents = [0, 1, 2, 3, 4, 5].map((i) => ({ name: `edge-${i}`, unit: `unit-${i % 3}` }));
    const faults = planFaults(new Rng(7), { durationMs: 120_000, agents });
    const windows = new Map<string, [number, number][]>();
    for (const f of faults) {
      if (f.kind === 'instance-crash') continue;
      const keys = f.kind === 'unit-partition' ? agents.filter((a) => a.unit === f.target).map((a) => `link:${a.name}`)
        : f.kind.startsWith('link') ? [`link:${f.target}`] : f.kind.startsWith('hub') ? ['hub'] : [`agent:${f.target}`];
      for (const k of keys) {
        const list = windows.get(k) ?? [];
        for (const [s, e] of list) assert.ok(f.at >= e || f.at + f.durationMs <= s, `${f.kind} on ${k} at ${f.at} overlaps ${s}-${e}`);
        list.push([f.at, f.at + f.durationMs]);
        windows.set(k, list);
      }
    }
  });

  test('rng: ints in range, weighted never picks a zero weight', () => {
    const rng = new Rng(1);
    for (let i = 0; i < 1000; i++) {
      const n = rng.int(3, 5);
      assert.ok(n >= 3 && n <= 5);
      assert.equal(rng.weighted([['a', 0], ['b', 1]] as const), 'b');
    }
  });

  test('command line: defaults, a printed seed, bad values refused', () => {
    const o = parseChaosArgs(['--', '--seed', '12']);
    assert.deepEqual({ ...o, convergeTimeoutS: undefined }, { agents: 6, units: 3, durationS: 60, seed: 12, keep: false, convergeTimeoutS: undefined, reportFile: REPORT_FILE });
    assert.equal(parseChaosArgs(['--report', 'x/r.json']).reportFile, resolve('x/r.json'));
    assert.equal(typeof parseChaosArgs([]).seed, 'number');
    assert.throws(() => parseChaosArgs(['--agents', 'x']), /--agents x/);
    assert.throws(() => parseChaosArgs(['--units', '5', '--agents', '2']), /every unit needs an agent/);
    assert.throws(() => parseChaosArgs(['--bogus']));
  });

  describe('restart accounting', () => {
    test('first start, template change and injected crash are all explained', () => {
      const a = accountInstance('app-u-0', 'n1', [start('g1', 10), start('g2', 11), start('g2', 12)], [version('g1'), version('g2')], [crash(11)]);
      assert.deepEqual(a.causes, { first: 1, template: 1, crash: 1, recreation: 0 });
      assert.deepEqual(a.unexplained, []);
    });

    test('a restart with the same template and no crash, without a recreation, is a violation', () => {
      const a = accountInstance('app-u-0', 'n1', [start('g1', 10), start('g1', 11)], [version('g1')], []);
      assert.equal(a.causes.recreation, 1);
      assert.equal(a.unexplained.length, 1);
      assert.match(a.unexplained[0]!, /restarted without cause/);
    });

    test('the same restart is legitimate when the instance was deleted and created again', () => {
      const a = accountInstance('app-u-0', 'n1', [start('g1', 10), start('g1', 11)], [version('g1', 'u1'), null, version('g1', 'u2')], []);
      assert.deepEqual(a.unexplained, []);
      assert.equal(a.arrivals, 2);
    });

    test('more template restarts than template changes is a violation', () => {
      const a = accountInstance('app-u-0', 'n1', [start('g1', 10), start('g2', 11), start('g1', 12), start('g2', 13)], [version('g1'), version('g2')], []);
      assert.ok(a.unexplained.some((u) => /placed only 2 version/.test(u)), a.unexplained.join('\n'));
    });

    test('a template the hub never placed on the node is a violation', () => {
      const a = accountInstance('app-u-0', 'n1', [start('g9', 10)], [version('g1')], []);
      assert.ok(a.unexplained.some((u) => /never placed/.test(u)));
    });

    test('changes collapsed while offline are fine (fewer starts than versions)', () => {
      const a = accountInstance('app-u-0', 'n1', [start('g1', 10), start('g4', 11)], [version('g1'), version('g2'), version('g3'), version('g4')], []);
      assert.deepEqual(a.unexplained, []);
      assert.equal(a.templateChanges, 3);
    });

    test('a crash of another node\'s process explains nothing here', () => {
      const a = accountInstance('app-u-0', 'n1', [start('g1', 10), start('g1', 11)], [version('g1')], [crash(10, 'n2')]);
      assert.equal(a.unexplained.length, 1);
    });
  });
});
