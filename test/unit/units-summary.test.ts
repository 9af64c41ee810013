import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unitsSummary } from '../../cloud-hub/scheduler/units-summary.js';

const unit = (name: string, ready: number, desired: number) => ({ unit: name, desired, scheduled: desired, ready, updated: ready });

test('EdgeApp status summary: total ready/desired and per unit in the given order', () => {
  assert.deepEqual(unitsSummary([unit('site-a', 2, 2), unit('site-b', 1, 2)]), { ready: '3/4', unitsSummary: 'site-a 2/2, site-b 1/2' });
  assert.deepEqual(unitsSummary([]), { ready: '0/0', unitsSummary: '' });
});

test('EdgeApp status summary: many units stay within the schema bound and count the units left out', () => {
  const r = unitsSummary(Array.from({ length: 500 }, (_, i) => unit(`a-rather-long-unit-name-${i}`, 1, 1)));
  assert.equal(r.ready, '500/500');
  assert.ok(r.unitsSummary.length <= 1024, `length ${r.unitsSummary.length}`);
  const listed = r.unitsSummary.split(', ').filter((p) => !p.startsWith('+')).length;
  assert.match(r.unitsSummary, new RegExp(`, \\+${500 - listed} more$`));
});
