import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesRequirements, parseLabelPairs, parseLabelSelector } from '../../shared/labels.js';
import { isOutpostError } from '../../shared/errors.js';

test('label selector parses equality, inequality, existence', () => {
  const reqs = parseLabelSelector('tier=edge, zone!=eu ,gpu,!legacy');
  assert.deepEqual(reqs, [
    { key: 'tier', op: 'eq', value: 'edge' },
    { key: 'zone', op: 'neq', value: 'eu' },
    { key: 'gpu', op: 'exists' },
    { key: 'legacy', op: 'notexists' },
  ]);
  assert.equal(matchesRequirements({ tier: 'edge', gpu: '1' }, reqs), true);
  assert.equal(matchesRequirements({ tier: 'edge', gpu: '1', zone: 'eu' }, reqs), false);
  assert.equal(matchesRequirements({ tier: 'edge', gpu: '1', legacy: 'y' }, reqs), false);
  assert.equal(matchesRequirements({ tier: 'cloud', gpu: '1' }, reqs), false);
});

test('bad label selector names the term', () => {
  assert.throws(() => parseLabelSelector('a=b,!c=d'), (e) => isOutpostError(e, 'BAD_REQUEST') && e.message.includes('!c=d'));
  assert.throws(() => parseLabelPairs('novalue'), (e) => isOutpostError(e, 'BAD_REQUEST') && e.message.includes('novalue'));
});
