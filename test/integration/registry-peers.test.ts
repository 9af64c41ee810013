// Registry replication and failure detection inside a unit (issue 6) with real processes: a hub,
// three agents of unit "shop" (autonomy.peerHealth) and one of unit "depot". A registration on one
// shop agent is visible on the others; with the hub SIGKILLed registration, discovery and failure
// detection go on and a stopped-then-continued agent converges; an agent SIGKILLed is suspected
// (its instances critical on the others), voted Down at the hub, and restored when it returns.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, type EdgeNode, type NodeUnit, type UnitPeers } from '../../shared/api/index.js';
import { freePort } from '../../shared/free-port.js';
import { TestCluster, type Proc } from '../helpers/cluster.js';
import { nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const REG = '/v1/registry/services';

interface View { id: string; node: string; nearness: string; health: string; originSuspected?: boolean }

async function call<T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { method, headers: { 'Content-Type': 'application/json' }, signal: AbortSignal.timeout(10_000), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function lookup(agent: { localApi: string }, service: string, all = false): Promise<View[]> {
  const r = await call<{ instances: View[] }>('GET', `${agent.localApi}${REG}/${service}${all ? '?all=true' : ''}`);
  return r.body.instances;
}

async function register(agent: { localApi: string }, service: string, id: string): Promise<void> {
  const r = await call('PUT', `${agent.localApi}${REG}/${service}/instances/${id}`, { address: '10.0.0.7', port: 8080, ttl: '10m' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

type Agent = Proc & { localApi: string };

describe('registry replication and failure detection inside a unit', () => {
  const cluster = new TestCluster();
  const agents = new Map<string, Agent>();
  const peerPorts = new Map<string, number>();
  const args = (name: string) => ['--dns-listen', 'none', '--peer-listen', `127.0.0.1:${peerPorts.get(name) ?? 0}`];

  before(async () => {
    await cluster.startHub();
    const shop: NodeUnit = nodeUnit('shop');
    shop.spec = { ...shop.spec, autonomy: { peerHealth: true } };
    await cluster.api('POST', `${API}/nodeunits`, shop);
    await cluster.api('POST', `${API}/nodeunits`, nodeUnit('depot'));
    // Fixed peer ports: a restarted agent comes back at the endpoint its peers have cached.
    for (const n of ['a', 'b', 'c']) peerPorts.set(n, await freePort());
    await Promise.all((['a', 'shop', 'b', 'shop', 'c', 'shop', 'd', 'depot'] as const).flatMap((n, i, all) => (i % 2 === 0 ? [cluster.startAgent(n, all[i + 1] ?? '', args(n)).then((p) => { agents.set(n, p); })] : [])));
  });
  after(() => cluster.cleanup());

  const agent = (n: string): Agent => {
    const a = agents.get(n);
    if (!a) throw new Error(`no agent ${n}`);
    return a;
  };

  test('the hub lists the unit peers with a credential it shows redacted; a registration on A is visible on B and C, not replicated to the other unit', async () => {
    const peers = await waitFor(async () => {
      const p = await cluster.api<UnitPeers>('GET', `${API}/unitpeers/shop`).catch(() => undefined);
      return p && p.spec.peers.length === 3 ? p : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100, message: 'UnitPeers shop with 3 peers' });
    assert.deepEqual(peers.spec.peers.map((p) => p.node), ['a', 'b', 'c']);
    assert.equal(peers.spec.credential, REDACTED, 'the unit credential is not shown');
    assert.match(cluster.cli(['get', 'unitpeers']).stdout, /^shop\s+3\s+a,b,c\s/m);
    await register(agent('a'), 'web', 'w1');
    for (const n of ['b', 'c']) {
      const seen = await waitFor(async () => (await lookup(agent(n), 'web')).find((i) => i.id === 'w1'), { timeoutMs: 10_000, intervalMs: 50, message: `w1 on ${n}` });
      assert.equal(seen.nearness, 'unit');
      assert.equal(seen.node, 'a');
    }
    const d = await call<{ registryPeers: { peers: unknown[] } }>('GET', `${agent('d').localApi}/v1/status`);
    assert.deepEqual(d.body.registryPeers.peers, [], 'the depot agent has no shop peers');
  });

  test('an agent SIGKILLed is suspected and its instances turn critical on the others; the hub declares it Down by vote; it is restored when it returns', async () => {
    await register(agent('c'), 'cam', 'c1');
    for (const n of ['a', 'b']) await waitFor(async () => (await lookup(agent(n), 'cam')).length === 1, { timeoutMs: 10_000, intervalMs: 50, message: `c1 on ${n}` });
    await agent('c').kill();
    for (const n of ['a', 'b']) {
      const critical = await waitFor(async () => (await lookup(agent(n), 'cam', true)).find((i) => i.originSuspected), { timeoutMs: 15_000, intervalMs: 100, message: `c suspected on ${n}` });
      assert.equal(critical.health, 'critical');
      assert.deepEqual(await lookup(agent(n), 'cam'), [], 'hidden from default lookups');
    }
    const down = await waitFor(async () => {
      const node = await cluster.api<EdgeNode>('GET', `${API}/edgenodes/c`);
      return node.status?.phase === 'Down' ? node : undefined;
    }, { timeoutMs: 20_000, intervalMs: 200, message: 'c Down by peer votes' });
    assert.match(down.status?.reason ?? '', /unreachable from its unit: 2 of 2 connected peers/);
    agents.set('c', await cluster.restartAgent('c', cluster.requireHub().url, args('c')));
    for (const n of ['a', 'b']) {
      await waitFor(async () => {
        const v = (await lookup(agent(n), 'cam')).find((i) => i.id === 'c1');
        return v && !v.originSuspected && v.health === 'passing';
      }, { timeoutMs: 15_000, intervalMs: 100, message: `c1 restored on ${n}` });
    }
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/c`)).status?.phase === 'Ready', { timeoutMs: 15_000, intervalMs: 200, message: 'c Ready again' });
  });

  test('with the hub killed, registration, discovery and failure detection go on; a stopped agent converges when it continues', async () => {
    await cluster.requireHub().kill();
    await register(agent('b'), 'db', 'b1');
    for (const n of ['a', 'c']) await waitFor(async () => (await lookup(agent(n), 'db')).length === 1, { timeoutMs: 10_000, intervalMs: 50, message: `b1 on ${n} without the hub` });
    // C stops answering (SIGSTOP): suspected; meanwhile A registers and B deregisters.
    agent('c').child.kill('SIGSTOP');
    try {
      await waitFor(async () => (await lookup(agent('a'), 'cam', true)).find((i) => i.originSuspected), { timeoutMs: 15_000, intervalMs: 100, message: 'stopped c suspected on a' });
      await register(agent('a'), 'web', 'w2');
      const del = await call('DELETE', `${agent('b').localApi}${REG}/db/instances/b1`);
      assert.ok(del.status < 300, `deregister: ${del.status}`);
    } finally {
      agent('c').child.kill('SIGCONT');
    }
    await waitFor(async () => {
      const web = (await lookup(agent('c'), 'web')).map((i) => i.id).sort().join(',');
      const db = await lookup(agent('c'), 'db', true);
      return web === 'w1,w2' && db.length === 0;
    }, { timeoutMs: 15_000, intervalMs: 100, message: 'c converged after continuing' });
    await waitFor(async () => (await lookup(agent('a'), 'cam')).some((i) => i.id === 'c1' && !i.originSuspected), { timeoutMs: 15_000, intervalMs: 100, message: 'c no longer suspected on a' });
  });
});
