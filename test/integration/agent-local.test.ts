// The agent on its own: a corrupt cache is quarantined and rebuilt without losing the running
// instance; cold start with the hub's name not resolving; the site operator's status command.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, pidAlive, runCli } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

describe('agent on its own', () => {
  const cluster = new TestCluster();
  const pids: number[] = [];
  let agent: Awaited<ReturnType<TestCluster['startAgent']>>;
  const data = () => join(cluster.dir, 'agents', 'solo');
  const localStatus = async (a: { localApi: string }) => (await (await fetch(`${a.localApi}/v1/status`)).json()) as {
    cloud: string; cache: { status: string; reason: string }; instances: Record<string, { phase: string; pid?: number }>;
  };

  before(async () => {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'u' }, spec: {} });
    agent = await cluster.startAgent('solo', 'u');
    await cluster.api('POST', `${API}/edgeapps`, {
      apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'rec' },
      spec: { units: { names: ['u'] }, template: { processes: [{ command: 'sleep', args: ['100000'] }] } },
    });
    const i = await waitFor(async () => {
      const x = await cluster.api<Instance>('GET', `${API}/instances/rec-u-0`);
      return x.status?.phase === 'Running' ? x : undefined;
    }, { timeoutMs: 20_000, message: 'rec running' });
    pids.push(i.status?.pid ?? 0);
  });
  after(async () => {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  });

  test('a corrupt cache file is quarantined, reported, and rebuilt from the hub; the instance is re-adopted', async () => {
    const pid = pids[0] ?? 0;
    await agent.kill();
    writeFileSync(join(data(), 'cache.db'), 'garbage '.repeat(1000));
    for (const f of ['cache.db-wal', 'cache.db-shm']) writeFileSync(join(data(), f), '');
    agent = await cluster.restartAgent('solo', cluster.requireHub().url);
    assert.ok(readdirSync(data()).some((f) => f.startsWith('cache.db.corrupt-')), 'kept for forensics');
    const s = await waitFor(async () => {
      const x = await localStatus(agent);
      return x.cache.reason === 'RebuiltFromHub' && x.instances['rec-u-0']?.phase === 'Running' ? x : undefined;
    }, { timeoutMs: 20_000, message: 'rebuilt' });
    assert.equal(s.cache.status, 'True');
    assert.equal(s.instances['rec-u-0']?.pid, pid, 're-adopted from runtime.db: not restarted');
    const node = await waitFor(async () => {
      const n = await cluster.api<EdgeNode>('GET', `${API}/edgenodes/solo`);
      return n.status?.conditions?.find((c) => c.type === 'CacheHealthy' && c.reason === 'RebuiltFromHub') ? n : undefined;
    }, { timeoutMs: 15_000, message: 'condition reported to the hub' });
    assert.match(node.status?.conditions?.[0]?.message ?? '', /moved to .*cache\.db\.corrupt-/);
  });

  test('cold start with the hub unresolvable: cached instances run, and `agent status` tells the site operator', async () => {
    const pid = pids[0] ?? 0;
    await agent.kill();
    killGroup(pid);
    await waitFor(() => !pidAlive(pid), { message: 'power cut' });
    agent = await cluster.restartAgent('solo', 'http://outpost-hub.invalid:7400');
    const s = await waitFor(async () => {
      const x = await localStatus(agent);
      return x.instances['rec-u-0']?.phase === 'Running' ? x : undefined;
    }, { timeoutMs: 15_000, message: 'running from cache' });
    pids.push(s.instances['rec-u-0']?.pid ?? 0);
    assert.match(s.cloud, /^disconnected since/);
    const text = await runCli(['agent', 'status', '--data', data()], {});
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /agent:\s+running \(pid \d+/);
    assert.match(text.stdout, /cloud:\s+disconnected since .*ENOTFOUND|cloud:\s+disconnected since/);
    assert.match(text.stdout, /rec-u-0\s+Running/);
    await agent.stop();
    const offline = await runCli(['agent', 'status', '--data', data(), '-o', 'json'], {});
    assert.equal(offline.code, 0, offline.stderr);
    const doc = JSON.parse(offline.stdout) as { cloud: string; instances: Record<string, { phase: string }> };
    assert.match(doc.cloud, /agent not running/);
    assert.equal(doc.instances['rec-u-0']?.phase, 'Running (unsupervised)', 'instances outlive the agent, and the files say so');
    const bad = await runCli(['agent', 'status', '--data', cluster.dir], {});
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not an agent data directory/);
  });
});
