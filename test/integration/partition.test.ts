// A half-open link (packets silently dropped both ways, as when a WAN router dies) between an
// agent and the hub: both ends notice within their read deadlines, the node is Disconnected but
// never Down (policy "never"), its instance keeps running, and after heal nothing restarts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultProxy } from '../../chaos/fault-proxy.js';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, pidAlive } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

describe('partition through a fault-injecting proxy', () => {
  const cluster = new TestCluster();
  let proxy: FaultProxy;
  let pid = 0;
  after(async () => {
    await proxy.stop();
    await cluster.cleanup();
    killGroup(pid);
  });
  before(async () => {
    await cluster.startHub();
    proxy = new FaultProxy({ targetPort: cluster.hubPort() });
    await proxy.start();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'far' }, spec: {} });
  });

  test('blackholed link: detected on both ends, node Disconnected not Down, instance untouched after heal', async () => {
    const agent = await cluster.startAgent('f1', 'far', [], proxy.url);
    await cluster.api('POST', `${API}/edgeapps`, {
      apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'vid' },
      spec: { units: { names: ['far'] }, template: { processes: [{ command: 'sleep', args: ['100000'] }] } },
    });
    const before = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/vid-far-0`);
      return i.status?.phase === 'Running' && i.status.pid ? i : undefined;
    }, { timeoutMs: 20_000, message: 'vid running' });
    pid = before.status?.pid ?? 0;
    const cloud = async () => ((await (await fetch(`${agent.localApi}/v1/status`)).json()) as { cloud: string }).cloud;

    proxy.blackhole();
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/f1`)).status?.phase === 'Disconnected', { timeoutMs: 15_000, intervalMs: 100, message: 'hub notices' });
    await waitFor(async () => (await cloud()).startsWith('disconnected'), { timeoutMs: 15_000, intervalMs: 100, message: 'agent notices' });
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal((await cluster.api<EdgeNode>('GET', `${API}/edgenodes/f1`)).status?.phase, 'Disconnected', 'never Down by default');
    assert.ok(pidAlive(pid), 'the site keeps running');

    proxy.restore();
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/f1`)).status?.phase === 'Ready', { timeoutMs: 20_000, message: 'healed' });
    const after = await cluster.api<Instance>('GET', `${API}/instances/vid-far-0`);
    assert.equal(after.status?.pid, pid, 'no restart from the reconnect');
    assert.equal(after.status?.restarts, before.status?.restarts);
  });
});
