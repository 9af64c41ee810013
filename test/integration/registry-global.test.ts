// Global view and other units (issue 6) with real processes: a hub and one agent in each of two
// units. A registration on one agent shows in `outpost get services`; the agent of the other unit
// resolves it through the hub (nearness remote), then from its cache with the hub SIGKILLed, also
// after its own restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster } from '../helpers/cluster.js';
import { nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const REG = '/v1/registry/services';
const AGENT_ARGS = ['--dns-listen', 'none'];

interface Answer { instances: { id: string; unit: string; node: string; nearness: string; address: string; port: number }[] }

async function call<T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { method, headers: { 'Content-Type': 'application/json' }, signal: AbortSignal.timeout(10_000), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

describe('global registry view and resolution across units', () => {
  const cluster = new TestCluster();
  let a1: { localApi: string };
  let b1: { localApi: string; kill(): Promise<void> };

  before(async () => {
    await cluster.startHub();
    for (const u of ['site-a', 'site-b']) await cluster.api('POST', `${API}/nodeunits`, nodeUnit(u));
    a1 = await cluster.startAgent('a1', 'site-a', AGENT_ARGS);
    b1 = await cluster.startAgent('b1', 'site-b', AGENT_ARGS);
  });
  after(() => cluster.cleanup());

  test('a registration on an agent shows in outpost get services and describe service', async () => {
    const put = await call('PUT', `${a1.localApi}${REG}/web/instances/w1`, { address: '10.0.0.7', port: 8080, ttl: '10m' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await call('PUT', `${b1.localApi}${REG}/web/instances/wb`, { address: '10.0.1.7', port: 8081, ttl: '10m' });
    const listed = await waitFor(() => {
      const r = cluster.cli(['get', 'services']);
      return /^web\s+site-a,site-b\s+2\s+2$/m.test(r.stdout) ? r.stdout : undefined;
    }, { timeoutMs: 20_000, intervalMs: 200, message: 'web in outpost get services' });
    assert.match(listed, /^NAME\s+UNITS\s+HEALTHY\s+INSTANCES$/m);
    const desc = cluster.cli(['describe', 'service', 'web']);
    assert.equal(desc.code, 0, desc.stderr);
    assert.match(desc.stdout, /site-a\s+a1\s+w1\s+10\.0\.0\.7:8080\s+tcp\s+passing\s+Ready/);
  });

  test('a hub that lost its view gets it back from the agents at reconnect (digest comparison)', async () => {
    const port = cluster.hubPort();
    await cluster.requireHub().kill();
    rmSync(join(cluster.hubDir, 'registry.db'), { force: true });
    rmSync(join(cluster.hubDir, 'registry.db-wal'), { force: true });
    rmSync(join(cluster.hubDir, 'registry.db-shm'), { force: true });
    await cluster.startHub(port);
    await waitFor(() => /^web\s+site-a,site-b\s+2\s+2$/m.test(cluster.cli(['get', 'services']).stdout), { timeoutMs: 30_000, intervalMs: 300, message: 'the view re-reported by both agents' });
  });

  test('the other unit resolves it through the hub, then from its cache with the hub killed and across its restart', async () => {
    const fromB = await waitFor(async () => {
      const r = await call<Answer>('GET', `${b1.localApi}${REG}/web`);
      return r.body.instances.some((i) => i.id === 'w1') ? r.body : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100, message: 'w1 resolved on b1 through the hub' });
    assert.deepEqual(fromB.instances.map((i) => [i.id, i.unit, i.nearness]), [['wb', 'site-b', 'node'], ['w1', 'site-a', 'remote']], 'nearest first');
    const onlyA = await call<Answer>('GET', `${b1.localApi}${REG}/web?unit=site-a`);
    assert.deepEqual(onlyA.body.instances.map((i) => [i.id, i.address, i.port]), [['w1', '10.0.0.7', 8080]]);

    const hubUrl = cluster.requireHub().url;
    await cluster.requireHub().kill();
    // The agent sees the link drop within its read deadline (3 s); answers come from the cache.
    await waitFor(async () => ((await call<{ cloud: string }>('GET', `${b1.localApi}/v1/status`)).body.cloud.startsWith('disconnected') ? true : undefined), { timeoutMs: 15_000, message: 'b1 disconnected' });
    const cached = await call<Answer>('GET', `${b1.localApi}${REG}/web`);
    assert.deepEqual(cached.body.instances.map((i) => [i.id, i.nearness]), [['wb', 'node'], ['w1', 'remote']]);

    await b1.kill();
    b1 = await cluster.restartAgent('b1', hubUrl, AGENT_ARGS);
    const afterRestart = await call<Answer>('GET', `${b1.localApi}${REG}/web?unit=site-a`);
    assert.deepEqual(afterRestart.body.instances.map((i) => [i.id, i.nearness]), [['w1', 'remote']]);
  });
});
