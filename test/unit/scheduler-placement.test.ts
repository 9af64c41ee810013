import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeFit, noFitMessage, tolerates } from '../../cloud-hub/scheduler/placement-fit.js';
import { NodeUsage, pickNode } from '../../cloud-hub/scheduler/placement.js';
import type { AppTemplate, EdgeNode, Taint } from '../../shared/api/index.js';
import { parseCpuMillis, parseMemoryBytes } from '../../shared/quantity.js';
import { edgeNode, instance } from '../helpers/objects.js';

const Mi = 2 ** 20;
function node(name: string, o: { phase?: 'Ready' | 'Disconnected'; taints?: Taint[]; labels?: Record<string, string>; cpus?: number; memory?: number; unschedulable?: boolean } = {}): EdgeNode {
  const n = edgeNode(name, { unit: 'u', ...(o.labels ? { labels: o.labels } : {}) });
  n.spec = { ...n.spec, ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) };
  n.status = { phase: o.phase ?? 'Ready', ...(o.cpus !== undefined ? { capacity: { cpus: o.cpus, memoryBytes: o.memory ?? 0 } } : {}) };
  return n;
}
const tmpl = (extra: Partial<AppTemplate> = {}, requests?: { cpu?: string; memory?: string }): AppTemplate => ({ processes: [{ command: 'sleep', ...(requests ? { resources: { requests } } : {}) }], ...extra });
const zero = { cpuMillis: 0, memoryBytes: 0 };

describe('placement fit', () => {
  test('quantities', () => {
    assert.deepEqual(['250m', '0.5', '2', '1.25'].map(parseCpuMillis), [250, 500, 2000, 1250]);
    assert.deepEqual(['64Mi', '1G', '1024', '2Ki'].map(parseMemoryBytes), [64 * Mi, 1e9, 1024, 2048]);
    assert.throws(() => parseMemoryBytes('12XB'), /memory quantity "12XB"/);
    assert.throws(() => parseCpuMillis('lots'), /cpu quantity "lots"/);
  });

  test('tolerations follow the Kubernetes matching rules', () => {
    const gpu: Taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
    assert.equal(tolerates(undefined, gpu), false);
    assert.equal(tolerates([{ key: 'dedicated', value: 'gpu' }], gpu), true, 'Equal is the default operator; empty effect matches all');
    assert.equal(tolerates([{ key: 'dedicated', value: 'cpu' }], gpu), false);
    assert.equal(tolerates([{ key: 'dedicated', operator: 'Exists' }], gpu), true);
    assert.equal(tolerates([{ operator: 'Exists' }], gpu), true, 'empty key with Exists tolerates everything');
    assert.equal(tolerates([{ key: 'dedicated', value: 'gpu', effect: 'PreferNoSchedule' }], gpu), false, 'effect must match when given');
    assert.equal(tolerates([{ key: 'x', operator: 'Exists' }], { key: 'x', effect: 'NoSchedule' }), true);
  });

  test('hard rules: Ready, unschedulable, nodeSelector, NoSchedule taints, capacity; no capacity = unlimited', () => {
    const t = tmpl({}, { cpu: '500m', memory: '64Mi' });
    const need = { cpuMillis: 500, memoryBytes: 64 * Mi };
    assert.deepEqual(nodeFit(node('a', { phase: 'Disconnected' }), t, zero, need), { fits: false, reason: 'not Ready' });
    assert.deepEqual(nodeFit(node('a', { unschedulable: true }), t, zero, need), { fits: false, reason: 'unschedulable' });
    assert.deepEqual(nodeFit(node('a', { labels: { gpu: 'no' } }), tmpl({ nodeSelector: { gpu: 'yes' } }), zero, zero), { fits: false, reason: 'not matching nodeSelector' });
    assert.deepEqual(nodeFit(node('a', { labels: { gpu: 'yes' } }), tmpl({ nodeSelector: { gpu: 'yes' } }), zero, zero), { fits: true, avoid: false });
    assert.deepEqual(nodeFit(node('a', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }), t, zero, need), { fits: false, reason: 'tainted dedicated=gpu:NoSchedule' });
    assert.deepEqual(nodeFit(node('a', { cpus: 1, memory: 100 * Mi }), t, { cpuMillis: 600, memoryBytes: 0 }, need), { fits: false, reason: 'lack cpu' });
    assert.deepEqual(nodeFit(node('a', { cpus: 1, memory: 100 * Mi }), t, { cpuMillis: 500, memoryBytes: 36 * Mi + 1 }, need), { fits: false, reason: 'lack memory' });
    assert.deepEqual(nodeFit(node('a', { cpus: 1, memory: 100 * Mi }), t, { cpuMillis: 500, memoryBytes: 36 * Mi }, need), { fits: true, avoid: false }, 'exactly full fits');
    assert.deepEqual(nodeFit(node('a'), t, { cpuMillis: 1e9, memoryBytes: 1e15 }, need), { fits: true, avoid: false });
  });

  test('capacity fills nodes; spread by app then overall then name; PreferNoSchedule only when nothing else fits', () => {
    const nodes = [node('n1', { cpus: 2, memory: 1000 * Mi }), node('n2', { cpus: 2, memory: 1000 * Mi })];
    const usage = NodeUsage.of([instance('other-0', { app: 'other', node: 'n1' })]);
    const t = tmpl({}, { memory: '400Mi' });
    const picks = [1, 2, 3, 4].map(() => pickNode({ unit: 'u', cordoned: false, nodes, app: 'web', template: t, usage }).node);
    assert.deepEqual(picks, ['n2', 'n1', 'n2', 'n1'], 'spread; n2 first because n1 runs another app');
    const full = pickNode({ unit: 'u', cordoned: false, nodes, app: 'web', template: t, usage });
    assert.deepEqual(full, { node: '', reason: 'no node of unit u fits: 2 lack memory' });

    const soft = [node('p1', { taints: [{ key: 'spot', effect: 'PreferNoSchedule' }] }), node('p2')];
    const u2 = new NodeUsage();
    const got = [1, 2, 3].map(() => pickNode({ unit: 'u', cordoned: false, nodes: soft, app: 'web', template: tmpl(), usage: u2 }).node);
    assert.deepEqual(got, ['p2', 'p2', 'p2'], 'avoided while another node fits');
    assert.equal(pickNode({ unit: 'u', cordoned: false, nodes: [soft[0]!], app: 'web', template: tmpl(), usage: u2 }).node, 'p1', 'used when nothing else fits');
    assert.equal(pickNode({ unit: 'u', cordoned: false, nodes: soft, app: 'web', template: tmpl({ tolerations: [{ key: 'spot', operator: 'Exists' }] }), usage: new NodeUsage() }).node, 'p1', 'tolerated: plain spread by name');
  });

  test('cordon: no new instances; the message names the reasons', () => {
    assert.deepEqual(pickNode({ unit: 'u', cordoned: true, nodes: [node('a')], app: 'w', template: tmpl(), usage: new NodeUsage() }), { node: '', reason: 'unit u is cordoned (no new instances)' });
    assert.equal(noFitMessage('x', ['lack memory', 'lack memory', 'tainted dedicated=gpu:NoSchedule']), 'no node of unit x fits: 2 lack memory, 1 tainted dedicated=gpu:NoSchedule');
    assert.equal(noFitMessage('x', ['lack cpu']), 'no node of unit x fits: 1 lacks cpu');
    assert.equal(noFitMessage('x', []), 'no node of unit x fits: the unit has no nodes');
  });
});
