import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EdgeApp, UnitAppStatus } from '../../shared/api/index.js';
import { rolloutVerdict } from '../../cli/commands/rollout-progress.js';
import { edgeApp } from '../helpers/objects.js';

const unit = (name: string, rollout: UnitAppStatus['rollout'], updateRevision = 2): UnitAppStatus => ({ unit: name, desired: 1, scheduled: 1, ready: 1, updated: 1, rollout, updateRevision });

function app(units: UnitAppStatus[], opts: { generation?: number; observedGeneration?: number; observedConfigRevision?: number } = {}): EdgeApp {
  const a = edgeApp('web');
  a.metadata.generation = opts.generation ?? 3;
  a.status = { observedGeneration: opts.observedGeneration ?? 3, revision: 2, units, ...(opts.observedConfigRevision !== undefined && { observedConfigRevision: opts.observedConfigRevision }) };
  return a;
}

test('rollout verdict: complete only when the hub saw the latest generation and every unit is Complete at the current revision', () => {
  assert.equal(rolloutVerdict(app([unit('a', 'Complete'), unit('b', 'Complete')])).state, 'complete');
  assert.equal(rolloutVerdict(app([unit('a', 'Complete'), unit('b', 'Progressing')])).state, 'progressing');
  assert.equal(rolloutVerdict(app([unit('a', 'Complete')], { observedGeneration: 2 })).state, 'progressing', 'status of an older generation');
  assert.equal(rolloutVerdict(app([unit('a', 'Complete', 1)])).state, 'progressing', 'complete at the previous revision');
  const failed = rolloutVerdict(app([unit('a', 'Complete'), unit('b', 'Failed')]));
  assert.equal(failed.state, 'failed');
  assert.deepEqual(failed.state === 'failed' ? failed.units.map((u) => u.unit) : [], ['b']);
});

test('rollout verdict: a config change the hub has not seen yet is not complete', () => {
  const a = app([unit('a', 'Complete')], { observedConfigRevision: 40 });
  assert.equal(rolloutVerdict(a, 41).state, 'progressing');
  assert.equal(rolloutVerdict(a, 40).state, 'complete');
  assert.equal(rolloutVerdict(app([unit('a', 'Complete')]), 0).state, 'complete', 'an app that uses no config');
});
