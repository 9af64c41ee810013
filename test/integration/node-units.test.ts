// NodeUnit membership with real agents: a unit claims nodes by selector and by name, stamps its
// labels and taints on them, moves their sessions (the agent resyncs to its new unit's apps), and
// a cordoned unit gets no new instances while running ones stay.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EdgeNode, Instance, NodeUnit } from '../../shared/api/index.js';
import { TestCluster } from '../helpers/cluster.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

describe('node units: membership, stamping, cordon', () => {
  const cluster = new TestCluster();
  after(() => cluster.cleanup());
  before(async () => {
    await cluster.startHub();
    for (const u of ['plant', 'line-1', 'spare']) await cluster.api('POST', `${API}/nodeunits`, nodeUnit(u));
    // All three join unit "plant"; the tokens of two give them line=1 (labels an operator gave).
    // m3 claims line=1 for itself (--labels): a node's own labels never move it into a unit.
    await cluster.startAgent('m1', 'plant', [], undefined, { labels: { line: '1' } });
    await cluster.startAgent('m2', 'plant', [], undefined, { labels: { line: '1' } });
    await cluster.startAgent('m3', 'plant', ['--labels', 'line=1']);
    await waitFor(async () => (await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items.filter((n) => n.status?.phase === 'Ready').length === 3, { timeoutMs: 30_000, message: 'three nodes Ready' });
  });

  const node = (name: string) => cluster.api<EdgeNode>('GET', `${API}/edgenodes/${name}`);
  const unitOf = async (name: string) => (await node(name)).spec.unit;

  test('a selector claims matching nodes; labels and taints are stamped; their agents follow the new unit\'s apps', async () => {
    // One replica exists before the move: it must follow to a moved node.
    await cluster.api('POST', `${API}/edgeapps`, edgeApp('line-app', { units: ['line-1'], replicasPerUnit: 1, template: { command: 'sleep', args: ['100000'] } }));
    await cluster.api('PUT', `${API}/nodeunits/line-1`, {
      ...nodeUnit('line-1'),
      spec: { selector: { matchLabels: { line: '1' } }, nodeLabels: { area: 'line-one' }, taints: [{ key: 'dedicated', value: 'line', effect: 'PreferNoSchedule' }] },
    });
    await waitFor(async () => (await unitOf('m1')) === 'line-1' && (await unitOf('m2')) === 'line-1', { timeoutMs: 15_000, message: 'm1 and m2 moved to line-1' });
    assert.equal(await unitOf('m3'), 'plant', 'self-given labels do not count for membership');
    assert.equal((await node('m3')).metadata.labels?.line, '1', 'but the node has them (nodeSelector can use them)');
    const m1 = await node('m1');
    assert.equal(m1.metadata.labels?.area, 'line-one');
    assert.equal(m1.metadata.labels?.['outpost.dev/unit'], 'line-1');
    assert.equal(m1.metadata.labels?.line, '1', 'the node\'s own labels stay');
    assert.deepEqual(m1.spec.taints, [{ key: 'dedicated', value: 'line', effect: 'PreferNoSchedule' }]);
    assert.equal(m1.spec.joinUnit, 'plant');
    // The app of line-1 runs on the moved nodes: their sessions were re-scoped to the new unit.
    // (Which of the two takes which replica depends on when each reconnected: spread is tested
    // in scheduling.test.ts.)
    await cluster.api('PUT', `${API}/edgeapps/line-app`, edgeApp('line-app', { units: ['line-1'], replicasPerUnit: 2, template: { command: 'sleep', args: ['100000'] } }));
    const running = await waitFor(async () => {
      const items = (await cluster.api<{ items: Instance[] }>('GET', `${API}/instances?fieldSelector=spec.app%3Dline-app`)).items;
      return items.length === 2 && items.every((i) => i.status?.phase === 'Running') ? items : undefined;
    }, { timeoutMs: 30_000, message: 'line-app running on the moved nodes' });
    for (const i of running) assert.ok(['m1', 'm2'].includes(i.spec.node), `${i.metadata.name} runs on ${i.spec.node}, a node of line-1`);
    const unit = await waitFor(async () => {
      const u = await cluster.api<NodeUnit>('GET', `${API}/nodeunits/line-1`);
      return u.status?.nodes?.total === 2 && u.status.nodes.ready === 2 ? u : undefined;
    }, { timeoutMs: 15_000, message: 'line-1 counts its two nodes' });
    assert.equal(unit.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    const plant = await cluster.api<NodeUnit>('GET', `${API}/nodeunits/plant`);
    assert.equal(plant.status?.nodes?.total, 1);

    // `outpost get units` shows the counts.
    const out = cluster.cli(['get', 'units']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /line-1\s+2\s+2\s+0\s+0\s+Ready/);
  });

  test('a unit listing a node by name wins over a selector; when it lets go the node returns and loses the stamps', async () => {
    await cluster.api('PUT', `${API}/nodeunits/spare`, { ...nodeUnit('spare'), spec: { nodes: ['m2'], nodeLabels: { spare: 'yes' } } });
    await waitFor(async () => (await unitOf('m2')) === 'spare', { timeoutMs: 15_000, message: 'm2 moved to spare' });
    const conflict = await waitFor(async () => {
      const u = await cluster.api<NodeUnit>('GET', `${API}/nodeunits/line-1`);
      return u.status?.conditions?.find((c) => c.type === 'MembershipConflict' && c.status === 'True');
    }, { timeoutMs: 15_000, message: 'line-1 reports the conflict' });
    assert.match(conflict.message, /m2/);
    assert.equal((await node('m2')).metadata.labels?.area, undefined, 'line-1 stamps were removed');

    await cluster.api('PUT', `${API}/nodeunits/spare`, { ...nodeUnit('spare'), spec: {} });
    await waitFor(async () => (await unitOf('m2')) === 'line-1', { timeoutMs: 15_000, message: 'm2 back in line-1 by selector' });
    assert.equal((await node('m2')).metadata.labels?.spare, undefined);
  });

  test('a name another unit lists in spec.nodes cannot join with some other unit\'s token', async () => {
    await cluster.api('PUT', `${API}/nodeunits/spare`, { ...nodeUnit('spare'), spec: { nodes: ['reserved-1'] } });
    const token = await cluster.createToken('plant');
    const res = await cluster.fetch('POST', '/agent/v1/join', { token, node: 'reserved-1' });
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { message: string }).message, /listed in spec\.nodes of unit spare/);
    assert.equal(await cluster.api('GET', `${API}/edgenodes/reserved-1`).catch(() => 'absent'), 'absent');
    await cluster.api('PUT', `${API}/nodeunits/spare`, { ...nodeUnit('spare'), spec: {} });
  });

  test('cordon: running instances stay, no new ones are placed', async () => {
    await cluster.api('POST', `${API}/edgeapps`, edgeApp('plant-app', { units: ['plant'], replicasPerUnit: 1, template: { command: 'sleep', args: ['100000'] } }));
    const first = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/plant-app-plant-0`);
      return i.status?.phase === 'Running' ? i : undefined;
    }, { timeoutMs: 20_000, message: 'plant-app running' });
    await cluster.api('PUT', `${API}/nodeunits/plant`, { ...nodeUnit('plant'), spec: { cordon: true } });
    await waitFor(async () => (await cluster.api<NodeUnit>('GET', `${API}/nodeunits/plant`)).status?.conditions?.some((c) => c.type === 'Cordoned' && c.status === 'True'), { timeoutMs: 10_000, message: 'Cordoned condition' });
    await cluster.api('PUT', `${API}/edgeapps/plant-app`, edgeApp('plant-app', { units: ['plant'], replicasPerUnit: 2, template: { command: 'sleep', args: ['100000'] } }));
    await new Promise((r) => setTimeout(r, 2000));
    const second = await cluster.api<Instance>('GET', `${API}/instances/plant-app-plant-1`).catch(() => undefined);
    assert.equal(second?.spec.node ?? '', '', 'no node for a new instance in a cordoned unit');
    const still = await cluster.api<Instance>('GET', `${API}/instances/plant-app-plant-0`);
    assert.equal(still.status?.pid, first.status?.pid, 'the running instance stays');
    await cluster.api('PUT', `${API}/nodeunits/plant`, { ...nodeUnit('plant'), spec: { cordon: false } });
    await waitFor(async () => (await cluster.api<Instance>('GET', `${API}/instances/plant-app-plant-1`).catch(() => undefined))?.spec.node === 'm3', { timeoutMs: 15_000, message: 'placed after uncordon' });
  });
});
