// Placement with real hub and agents (several per unit): per-unit variants as the process sees
// them, units gaining and losing an app with a label, spread, capacity (the agents report this
// machine's memory), and a unit taint without toleration.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { AppTemplate, EdgeApp, EdgeNode, Instance, NodeUnit } from '../../shared/api/index.js';
import { TestCluster, killGroup } from '../helpers/cluster.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const marker = `outpost-sched-${randomBytes(4).toString('hex')}`;

function markedPids(app: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `${marker}-${app}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process that writes what it sees of $GREETING and $EXTRA to seen.txt in its work dir, then stays. */
function template(app: string, extra: Partial<AppTemplate> = {}): AppTemplate {
  return {
    processes: [{ command: 'sh', args: ['-c', 'echo "$GREETING|$EXTRA" > seen.txt; while :; do sleep 1; done', `${marker}-${app}`], env: { GREETING: 'hello {{unit}}', EXTRA: 'base' } }],
    terminationGracePeriodSeconds: 1,
    ...extra,
  };
}

describe('scheduling with real agents', () => {
  const cluster = new TestCluster();
  const list = async (app: string) => (await cluster.api<{ items: Instance[] }>('GET', `${API}/instances`)).items.filter((i) => i.spec.app === app).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const running = (is: Instance[]) => is.every((i) => i.status?.phase === 'Running' && i.status.templateHash === i.spec.templateHash);
  const getApp = (name: string) => cluster.api<EdgeApp>('GET', `${API}/edgeapps/${name}`);
  const putUnit = (u: NodeUnit) => cluster.api('PUT', `${API}/nodeunits/${u.metadata.name}`, u);

  before(async () => {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, nodeUnit('site-a', { labels: { tier: 'shop' } }));
    await cluster.api('POST', `${API}/nodeunits`, nodeUnit('site-b'));
    await Promise.all([cluster.startAgent('a1', 'site-a'), cluster.startAgent('a2', 'site-a'), cluster.startAgent('a3', 'site-a'), cluster.startAgent('b1', 'site-b')]);
    await waitFor(async () => (await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items.filter((n) => n.status?.phase === 'Ready' && n.status.capacity).length === 4, { timeoutMs: 30_000, message: '4 nodes Ready' });
  });

  after(async () => {
    await cluster.cleanup();
    for (const app of ['env', 'labeled', 'spread', 'big', 'gpu']) for (const pid of markedPids(app)) killGroup(pid);
  });

  test('overrides apply in order per unit, with {{unit}} and {{node}}, in the env the process sees', async () => {
    const app = edgeApp('env', { units: ['site-a', 'site-b'], template: template('env') });
    app.spec.overrides = [
      { units: { names: ['site-b'] }, env: { GREETING: 'hi {{unit}} on {{node}}' }, replicas: 2 },
      { units: { selector: { matchLabels: { tier: 'shop' } } }, env: { EXTRA: 'shop' } },
      { units: { names: ['site-b', 'site-z'] }, env: { EXTRA: 'last wins' } },
    ];
    await cluster.api('POST', `${API}/edgeapps`, app);
    const is = await waitFor(async () => { const l = await list('env'); return l.length === 3 && running(l) ? l : undefined; }, { timeoutMs: 20_000, message: 'env running' });
    const seen = (i: Instance) => waitFor(() => {
      const f = join(cluster.dir, 'agents', i.spec.node, 'work', i.metadata.name, 'seen.txt');
      return existsSync(f) && readFileSync(f, 'utf8').trim();
    }, { message: `seen.txt of ${i.metadata.name}` });
    assert.deepEqual(await Promise.all(is.map(async (i) => [i.metadata.name, await seen(i)])), [
      ['env-site-a-0', 'hello site-a|shop'],
      ['env-site-b-0', 'hi site-b on b1|last wins'],
      ['env-site-b-1', 'hi site-b on b1|last wins'],
    ]);
    assert.deepEqual((await getApp('env')).status?.warnings, ['spec.overrides[2] targets unit "site-z", which does not exist']);
  });

  test('a unit that gains the selected label gets the app; losing it removes the app there', async () => {
    await cluster.api('POST', `${API}/edgeapps`, edgeApp('labeled', { units: [], unitSelector: { tier: 'shop' }, template: template('labeled') }));
    await waitFor(async () => { const l = await list('labeled'); return l.length === 1 && running(l); }, { timeoutMs: 20_000, message: 'labeled in site-a' });
    await putUnit(nodeUnit('site-b', { labels: { tier: 'shop' } }));
    const both = await waitFor(async () => { const l = await list('labeled'); return l.length === 2 && running(l) ? l : undefined; }, { timeoutMs: 20_000, message: 'labeled in site-b too' });
    assert.deepEqual(both.map((i) => i.spec.unit), ['site-a', 'site-b']);
    assert.equal(markedPids('labeled').length, 2);
    await putUnit(nodeUnit('site-b'));
    await waitFor(async () => (await list('labeled')).length === 1 && markedPids('labeled').length === 1, { timeoutMs: 20_000, message: 'labeled gone from site-b' });
  });

  test('spread over the unit\'s nodes; capacity: an instance that fits nowhere waits with the reason', async () => {
    await cluster.api('POST', `${API}/edgeapps`, edgeApp('spread', { units: ['site-a'], replicasPerUnit: 3, template: template('spread') }));
    const spread = await waitFor(async () => { const l = await list('spread'); return l.length === 3 && running(l) ? l : undefined; }, { timeoutMs: 20_000, message: 'spread running' });
    assert.deepEqual(spread.map((i) => i.spec.node).sort(), ['a1', 'a2', 'a3'], 'one per node');

    // Every agent reports this machine's memory: 60% of it fits once per node.
    const memory = String(Math.floor(totalmem() * 0.6));
    const big = template('big');
    big.processes![0]!.resources = { requests: { memory } };
    await cluster.api('POST', `${API}/edgeapps`, edgeApp('big', { units: ['site-a'], replicasPerUnit: 4, template: big }));
    const placed = await waitFor(async () => { const l = await list('big'); return l.length === 4 && running(l.filter((i) => i.spec.node)) && l.filter((i) => i.spec.node).length === 3 ? l : undefined; }, { timeoutMs: 20_000, message: 'big: 3 placed' });
    assert.deepEqual(placed.map((i) => i.spec.node).filter(Boolean).sort(), ['a1', 'a2', 'a3']);
    assert.equal(placed.find((i) => !i.spec.node)?.status?.phase ?? 'Pending', 'Pending');
    assert.match((await getApp('big')).status?.message ?? '', /no node of unit site-a fits: 3 lack memory/);
    assert.equal(markedPids('big').length, 3);
    assert.deepEqual((await list('spread')).map((i) => i.spec.node).sort(), ['a1', 'a2', 'a3'], 'the other app did not move');
  });

  test('a unit taint without toleration keeps new instances off; a toleration lets them on', async () => {
    const b = await cluster.api<NodeUnit>('GET', `${API}/nodeunits/site-b`);
    await putUnit({ ...b, spec: { ...b.spec, taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] } });
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/b1`)).spec.taints?.length === 1, { timeoutMs: 10_000, message: 'taint stamped on b1' });
    await cluster.api('POST', `${API}/edgeapps`, edgeApp('gpu', { units: ['site-b'], template: template('gpu') }));
    await waitFor(async () => /no node of unit site-b fits: 1 tainted dedicated=gpu:NoSchedule/.test((await getApp('gpu')).status?.message ?? ''), { timeoutMs: 10_000, message: 'the reason in the app status' });
    assert.deepEqual((await list('gpu')).map((i) => i.spec.node), ['']);
    assert.equal(markedPids('gpu').length, 0);
    assert.ok(running(await list('env')), 'instances already on b1 stay');

    const app = await getApp('gpu');
    app.spec.template.tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }];
    await cluster.api('PUT', `${API}/edgeapps/gpu`, { ...app, metadata: { name: 'gpu' }, status: undefined });
    await waitFor(async () => { const l = await list('gpu'); return l[0]?.spec.node === 'b1' && running(l); }, { timeoutMs: 20_000, message: 'gpu placed on b1' });
    assert.equal((await getApp('gpu')).status?.message, undefined);
  });
});
