// Read deadlines on both ends: a frozen peer (SIGSTOP) is noticed within the deadline, not after
// TCP gives up, and the link recovers when it thaws.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EdgeNode } from '../../shared/api/index.js';
import { TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

describe('liveness', () => {
  const cluster = new TestCluster();
  let agent: Awaited<ReturnType<TestCluster['startAgent']>>;
  const phase = async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/n1`)).status?.phase;
  const cloud = async () => ((await (await fetch(`${agent.localApi}/status`)).json()) as { cloud: string }).cloud;

  before(async () => {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'u1' }, spec: {} });
    agent = await cluster.startAgent('n1', 'u1');
    await waitFor(async () => (await phase()) === 'Ready', { timeoutMs: 15_000, message: 'n1 Ready' });
  });
  after(() => cluster.cleanup());

  test('the hub closes the session of a frozen agent within its read deadline (3 s here)', async () => {
    agent.child.kill('SIGSTOP');
    try {
      const started = Date.now();
      await waitFor(async () => (await phase()) === 'Disconnected', { timeoutMs: 15_000, intervalMs: 100, message: 'Disconnected' });
      assert.ok(Date.now() - started < 12_000, 'noticed within the deadline plus one ping period and write coalescing');
    } finally {
      agent.child.kill('SIGCONT');
    }
    await waitFor(async () => (await phase()) === 'Ready', { timeoutMs: 15_000, message: 'Ready after thaw' });
  });

  test('the agent notices a frozen hub within its read deadline and reconnects after', async () => {
    await waitFor(async () => (await cloud()).startsWith('connected'), { timeoutMs: 10_000, message: 'agent connected' });
    const hub = cluster.requireHub();
    hub.child.kill('SIGSTOP');
    try {
      await waitFor(async () => (await cloud()).startsWith('disconnected'), { timeoutMs: 15_000, intervalMs: 100, message: 'agent sees the hub gone' });
    } finally {
      hub.child.kill('SIGCONT');
    }
    await waitFor(async () => (await cloud()).startsWith('connected'), { timeoutMs: 15_000, message: 'reconnected' });
  });
});
