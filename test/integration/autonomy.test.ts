// Node lifecycle by policy: offline alone never moves work; only a unit's rescheduleAfter does,
// and a returning node then stops exactly the instances that moved away.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, pidAlive } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

function unit(name: string, rescheduleAfter: string | null) {
  return { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name }, spec: { autonomy: { rescheduleAfter } } };
}
function app(name: string, unitName: string) {
  return {
    apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name },
    spec: { units: { names: [unitName] }, replicasPerUnit: 1, template: { processes: [{ command: 'sleep', args: ['100000'] }], terminationGracePeriodSeconds: 1 } },
  };
}

describe('node lifecycle by policy', () => {
  const cluster = new TestCluster();
  const pids: number[] = [];
  const node = async (n: string) => cluster.api<EdgeNode>('GET', `${API}/edgenodes/${n}`);
  const inst = async (n: string) => cluster.api<Instance>('GET', `${API}/instances/${n}`);
  const running = (name: string) => waitFor(async () => {
    const i = await inst(name);
    return i.status?.phase === 'Running' && i.status.pid && i.status.node === i.spec.node ? i : undefined;
  }, { timeoutMs: 20_000, message: `${name} running` });

  before(async () => {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, unit('keep', null));
    await cluster.api('POST', `${API}/nodeunits`, unit('move', '5s'));
  });
  after(async () => {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  });

  test('rescheduleAfter null: a node cut off far past every deadline stays Disconnected and keeps its instance running', async () => {
    const agents: Record<string, Awaited<ReturnType<TestCluster['startAgent']>>> = { k1: await cluster.startAgent('k1', 'keep'), k2: await cluster.startAgent('k2', 'keep') };
    await cluster.api('POST', `${API}/edgeapps`, app('rec', 'keep'));
    const before = await running('rec-keep-0');
    pids.push(before.status?.pid ?? 0);
    const host = before.spec.node;
    const frozen = agents[host];
    assert.ok(frozen, `placed on a node of the unit, got ${host}`);
    frozen.child.kill('SIGSTOP'); // the hub loses the node: for the hub, a partition
    try {
      await waitFor(async () => (await node(host)).status?.phase === 'Disconnected', { timeoutMs: 15_000, message: 'Disconnected' });
      await new Promise((r) => setTimeout(r, 8000)); // well past the 3 s deadline and any 5 s policy
      assert.equal((await node(host)).status?.phase, 'Disconnected', 'never Down without a policy');
      assert.equal((await inst('rec-keep-0')).spec.node, host, 'the instance stays placed');
      assert.ok(pidAlive(before.status?.pid ?? 0), 'and keeps running on the edge');
    } finally {
      frozen.child.kill('SIGCONT');
    }
    await waitFor(async () => (await node(host)).status?.phase === 'Ready', { timeoutMs: 15_000, message: 'Ready again' });
    const afterReconnect = await running('rec-keep-0');
    assert.equal(afterReconnect.status?.pid, before.status?.pid, 'the reconnect did not restart it');
    assert.equal(afterReconnect.status?.restarts, 0);
  });

  test('rescheduleAfter 5s: the node goes Down, the instance moves; on return the old copy is stopped', async () => {
    const m1 = await cluster.startAgent('m1', 'move');
    await cluster.startAgent('m2', 'move');
    await waitFor(async () => (await node('m2')).status?.phase === 'Ready', { timeoutMs: 15_000, message: 'm2 Ready' });
    await cluster.api('POST', `${API}/edgeapps`, app('cam', 'move'));
    const first = await running('cam-move-0');
    assert.equal(first.spec.node, 'm1');
    const oldPid = first.status?.pid ?? 0;
    pids.push(oldPid);
    m1.child.kill('SIGSTOP');
    let moved: Instance;
    try {
      await waitFor(async () => (await node('m1')).status?.phase === 'Down', { timeoutMs: 20_000, message: 'm1 Down' });
      assert.match((await node('m1')).status?.reason ?? '', /rescheduleAfter \(5s\)/);
      moved = await waitFor(async () => {
        const i = await inst('cam-move-0');
        return i.spec.node === 'm2' && i.status?.phase === 'Running' && i.status.node === 'm2' ? i : undefined;
      }, { timeoutMs: 20_000, message: 'moved to m2 and running' });
      pids.push(moved.status?.pid ?? 0);
      assert.ok(pidAlive(oldPid), 'the cut-off node still runs its copy meanwhile (it cannot know)');
    } finally {
      m1.child.kill('SIGCONT');
    }
    await waitFor(async () => (await node('m1')).status?.phase === 'Ready', { timeoutMs: 15_000, message: 'm1 back' });
    await waitFor(() => !pidAlive(oldPid), { timeoutMs: 15_000, message: 'the old copy stopped on m1' });
    const now = await inst('cam-move-0');
    assert.equal(now.spec.node, 'm2', 'stays where it moved');
    assert.equal(now.status?.pid, moved.status?.pid, 'the moved instance was not restarted');
  });
});
