import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planRevisions, revisionHash } from '../../cloud-hub/scheduler/revisions.js';
import type { AppRevision, EdgeApp } from '../../shared/api/index.js';
import { edgeApp } from '../helpers/objects.js';

/** Applies plans to an in-memory list, as the scheduler does to the store. */
function run(app: EdgeApp, revs: AppRevision[], inUse = new Set<number>()): { current: number; revs: AppRevision[] } {
  const plan = planRevisions(app, revs, inUse);
  const next = [...revs.filter((r) => !plan.delete.includes(r.metadata.name)), ...plan.create].sort((a, b) => a.spec.revision - b.spec.revision);
  return { current: plan.current, revs: next };
}
const withArg = (arg: string, limit?: number) => {
  const a = edgeApp('web', { template: { command: 'sleep', args: [arg] } });
  if (limit !== undefined) a.spec.revisionHistoryLimit = limit;
  return a;
};

describe('app revisions', () => {
  test('a new template gets the next number; the same one is stable; replicas alone are no revision', () => {
    let s = run(withArg('1'), []);
    assert.equal(s.current, 1);
    assert.deepEqual(s.revs.map((r) => r.metadata.name), ['web-1']);
    assert.equal(s.revs[0]?.metadata.labels?.['outpost.dev/app'], 'web');
    s = run(withArg('1'), s.revs);
    assert.equal(s.current, 1);
    const scaled = withArg('1');
    scaled.spec.replicasPerUnit = 5;
    assert.equal(revisionHash(scaled), revisionHash(withArg('1')));
    s = run(withArg('2'), s.revs);
    assert.equal(s.current, 2);
    const withOverride = withArg('2');
    withOverride.spec.overrides = [{ units: { names: ['x'] }, env: { A: 'b' } }];
    assert.equal(run(withOverride, s.revs).current, 3, 'overrides are part of a revision');
  });

  test('returning to a kept template reuses its content under a new, highest number', () => {
    let s = run(withArg('1'), []);
    s = run(withArg('2'), s.revs);
    s = run(withArg('1'), s.revs);
    assert.equal(s.current, 3);
    assert.deepEqual(s.revs.map((r) => [r.metadata.name, r.spec.template.processes?.[0]?.args?.[0]]), [['web-2', '2'], ['web-3', '1']], 'web-1 became web-3');
  });

  test('pruned beyond revisionHistoryLimit, keeping the current one and revisions still in use', () => {
    let s = { current: 0, revs: [] as AppRevision[] };
    for (let i = 1; i <= 6; i++) s = run(withArg(String(i), 2), s.revs, new Set([1]));
    assert.equal(s.current, 6);
    assert.deepEqual(s.revs.map((r) => r.spec.revision), [1, 4, 5, 6], 'current + 2 old, and 1 which an instance still runs');
    s = run(withArg('7', 0), s.revs);
    assert.deepEqual(s.revs.map((r) => r.spec.revision), [7]);
  });
});
