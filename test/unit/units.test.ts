import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeUnit } from '../../shared/api/index.js';
import { resolveMembership, TRUSTED_LABELS_ANNOTATION } from '../../cloud-hub/units/membership.js';
import { STAMPED_LABELS_ANNOTATION, stampNode } from '../../cloud-hub/units/stamping.js';
import { unitStatus } from '../../cloud-hub/units/unit-status.js';
import { edgeNode, nodeUnit } from '../helpers/objects.js';

const unit = (name: string, spec: NodeUnit['spec']): NodeUnit => ({ ...nodeUnit(name), spec: { ...spec } });

test('membership: spec.nodes before selector before the join unit; the first unit by name wins a conflict', () => {
  const node = edgeNode('n1', { unit: 'joined', labels: { zone: 'west', rack: '7' }, annotations: { [TRUSTED_LABELS_ANNOTATION]: 'rack,zone' } });
  assert.deepEqual(resolveMembership(node, []), { unit: 'joined', by: 'join', alsoClaimedBy: [] });
  const bySel = unit('west', { selector: { matchLabels: { zone: 'west' } } });
  assert.equal(resolveMembership(node, [bySel]).unit, 'west');
  const byName = unit('zz-listed', { nodes: ['n1'] });
  const m = resolveMembership(node, [bySel, byName]);
  assert.deepEqual(m, { unit: 'zz-listed', by: 'nodes', alsoClaimedBy: ['west'] });
  const otherSel = unit('a-west', { selector: { matchLabels: { rack: '7' } } });
  assert.deepEqual(resolveMembership(node, [bySel, otherSel]), { unit: 'a-west', by: 'selector', alsoClaimedBy: ['west'] });
  // An empty selector claims nothing (it would otherwise take every node).
  assert.equal(resolveMembership(node, [unit('all', { selector: { matchLabels: {} } })]).unit, 'joined');
});

test('membership matches only labels the join token gave, never those the agent gave itself', () => {
  const west = unit('west', { selector: { matchLabels: { zone: 'west' } } });
  const selfLabelled = edgeNode('n1', { unit: 'joined', labels: { zone: 'west' } });
  assert.equal(resolveMembership(selfLabelled, [west]).unit, 'joined');
  const tokenLabelled = edgeNode('n2', { unit: 'joined', labels: { zone: 'west' }, annotations: { [TRUSTED_LABELS_ANNOTATION]: 'zone' } });
  assert.equal(resolveMembership(tokenLabelled, [west]).unit, 'west');
});

test('membership ignores labels a unit stamped, so stamping never pulls a node into another unit', () => {
  const stamper = unit('a', { nodes: ['n1'], nodeLabels: { tier: 'gold' } });
  const node = stampNode(edgeNode('n1', { unit: 'joined' }), 'a', stamper);
  assert.equal(node.metadata.labels?.tier, 'gold');
  const gold = unit('b', { selector: { matchLabels: { tier: 'gold' } } });
  // Unit a stops listing n1: the stamped tier=gold must not make it a member of b.
  assert.equal(resolveMembership(node, [unit('a', {}), gold]).unit, 'joined');
});

test('stamping adds the unit label, nodeLabels and taints, and removes them when the node leaves', () => {
  const n0 = edgeNode('n1', { unit: 'site-a', labels: { own: 'yes', tier: 'mine' } });
  const u = unit('gpu', { nodes: ['n1'], nodeLabels: { tier: 'gpu', hw: 'a100' }, taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] });
  const n1 = stampNode(n0, 'gpu', u);
  assert.equal(n1.spec.unit, 'gpu');
  assert.equal(n1.spec.joinUnit, 'site-a');
  assert.deepEqual(n1.metadata.labels, { own: 'yes', tier: 'gpu', hw: 'a100', 'outpost.dev/unit': 'gpu' });
  assert.deepEqual(n1.spec.taints, [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }]);
  assert.equal(n1.metadata.annotations?.[STAMPED_LABELS_ANNOTATION], 'hw,outpost.dev/unit,tier');
  // Back to the join unit: stamped labels and taints go; the node's own other labels stay.
  const n2 = stampNode(n1, 'site-a', unit('site-a', {}));
  assert.deepEqual(n2.metadata.labels, { own: 'yes', 'outpost.dev/unit': 'site-a' });
  assert.equal(n2.spec.taints, undefined);
  assert.equal(n2.spec.joinUnit, 'site-a');
  // Stamping is idempotent.
  assert.deepEqual(stampNode(n2, 'site-a', unit('site-a', {})), n2);
});

test('unit status counts phases and keeps condition transition times while unchanged', () => {
  const ready = { ...edgeNode('r'), status: { phase: 'Ready' as const } };
  const disc = { ...edgeNode('d'), status: { phase: 'Disconnected' as const } };
  const down = { ...edgeNode('x'), status: { phase: 'Down' as const } };
  const u = unit('a', { cordon: true });
  const s1 = unitStatus(u, [ready, disc, down], ['n9'], undefined, 't1');
  assert.deepEqual(s1.nodes, { total: 3, ready: 1, disconnected: 1, down: 1 });
  assert.deepEqual(s1.conditions?.map((c) => [c.type, c.status, c.lastTransitionTime]), [['Ready', 'True', 't1'], ['Cordoned', 'True', 't1'], ['MembershipConflict', 'True', 't1']]);
  assert.match(s1.conditions?.[2]?.message ?? '', /n9/);
  const s2 = unitStatus(u, [ready], [], s1, 't2');
  assert.equal(s2.conditions?.[0]?.lastTransitionTime, 't1');
  const s3 = unitStatus(u, [disc], [], s2, 't3');
  assert.deepEqual([s3.conditions?.[0]?.status, s3.conditions?.[0]?.reason, s3.conditions?.[0]?.lastTransitionTime], ['False', 'NoNodeReady', 't3']);
});
