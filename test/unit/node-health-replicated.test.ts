// NodeHealth in Kubernetes mode (issue 9): several replicas, each holding some sessions; the
// leader decides Disconnected by the renew deadline. Real SQLite store and object cache.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EdgeNode, EdgeNodeStatus } from '../../shared/api/index.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import type { HelloFrame } from '../../shared/protocol/frames.js';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { NodeHealth, type NodeHealthOptions } from '../../cloud-hub/health/node-health.js';
import { createHubMetrics } from '../../cloud-hub/metrics.js';
import { PeerVotes } from '../../cloud-hub/peers/peer-votes.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import type { Store } from '../../cloud-hub/store/store.js';
import { edgeNode, nodeUnit } from '../helpers/objects.js';
import { pause, waitFor } from '../helpers/wait.js';

const T0 = Date.parse('2026-12-07T06:00:00Z');
const hello = { type: 'hello', protocol: 1, appliedRevision: 0, agentVersion: 'test' } as unknown as HelloFrame;

async function setup(options: { leader?: boolean; replicated?: boolean; wrap?: (s: Store) => Store; peerVotes?: PeerVotes } = {}) {
  const sqlite = SqliteStore.open({ path: ':memory:' });
  const store = options.wrap ? options.wrap(sqlite) : sqlite;
  const cache = new ObjectCache({ store: sqlite, log: silentLogger() });
  await cache.start();
  await sqlite.create(nodeUnit('site-a'));
  let now = T0;
  let leader = options.leader ?? true;
  const connected = new Set<string>();
  const healthOptions: NodeHealthOptions = { flushIntervalMs: 20, lastSeenIntervalMs: 1_000, startupGraceMs: 60_000, ...(options.replicated === false ? {} : { replicated: { staleAfterMs: 2_500 } }) };
  const health = new NodeHealth(
    { store, cache, log: silentLogger(), metrics: createHubMetrics(createRegistry('t')), now: () => now, isConnected: (n) => connected.has(n), isLeader: () => leader, ...(options.peerVotes ? { peerVotes: options.peerVotes } : {}) },
    healthOptions,
  );
  const addNode = async (name: string, status: Partial<EdgeNodeStatus>) => {
    await sqlite.create({ ...edgeNode(name), status: { phase: 'Pending', ...status } });
  };
  const phase = async (name: string) => ((await sqlite.get('EdgeNode', name)) as EdgeNode | undefined)?.status;
  return {
    store: sqlite, cache, health, connected, addNode, phase,
    setNow: (t: number) => { now = t; },
    setLeader: (v: boolean) => { leader = v; },
    async close() { await health.stop(); await cache.stop(); await sqlite.close(); },
  };
}

describe('node health with several hub replicas', () => {
  test('the leader marks a Ready node Disconnected when no replica renewed it within the deadline', async () => {
    const h = await setup();
    try {
      const renewed = new Date(T0 - 3_000).toISOString();
      await h.addNode('gone', { phase: 'Ready', lastSeen: renewed, since: renewed });
      await h.addNode('fresh', { phase: 'Ready', lastSeen: new Date(T0 - 1_000).toISOString() });
      h.health.start();
      const st = await waitFor(async () => { const s = await h.phase('gone'); return s?.phase === 'Disconnected' ? s : undefined; }, { message: 'gone Disconnected' });
      assert.equal(st.since, renewed, 'since = its last renew');
      assert.equal((await h.phase('fresh'))?.phase, 'Ready', 'renewed 1 s ago: within the 2.5 s deadline');
    } finally {
      await h.close();
    }
  });

  test('a follower decides nothing; once leader, it does', async () => {
    const h = await setup({ leader: false });
    try {
      await h.addNode('gone', { phase: 'Ready', lastSeen: new Date(T0 - 60_000).toISOString() });
      h.health.start();
      await pause(200);
      assert.equal((await h.phase('gone'))?.phase, 'Ready');
      h.setLeader(true);
      await waitFor(async () => (await h.phase('gone'))?.phase === 'Disconnected', { message: 'leader marks it' });
    } finally {
      await h.close();
    }
  });

  test('a node with a session on the leader is never marked, however old its renew', async () => {
    const h = await setup();
    try {
      await h.addNode('here', { phase: 'Ready', lastSeen: new Date(T0 - 60_000).toISOString() });
      h.connected.add('here');
      h.health.start();
      await pause(200);
      assert.equal((await h.phase('here'))?.phase, 'Ready');
    } finally {
      await h.close();
    }
  });

  test('a renew written by another replica after the leader judged wins (resourceVersion precondition)', async () => {
    let raced = false;
    const h = await setup({
      wrap: (s) => new Proxy(s, {
        get(target, prop, receiver) {
          if (prop !== 'updateStatus') return Reflect.get(target, prop, receiver) as unknown;
          return async (...args: Parameters<Store['updateStatus']>) => {
            const [kind, name, , opts] = args;
            if (opts?.resourceVersion && !raced) {
              // The replica holding the node renews it between the leader's read and write.
              raced = true;
              const cur = (await target.get(kind, name)) as EdgeNode;
              await target.updateStatus(kind, name, { ...cur.status, lastSeen: new Date(T0).toISOString() });
            }
            return target.updateStatus(...args);
          };
        },
      }),
    });
    try {
      await h.addNode('moved', { phase: 'Ready', lastSeen: new Date(T0 - 60_000).toISOString() });
      h.health.start();
      await waitFor(() => raced, { message: 'the leader tried' });
      await pause(200);
      const st = await h.phase('moved');
      assert.equal(st?.phase, 'Ready', 'the fresh renew was not overwritten');
      assert.equal(st?.lastSeen, new Date(T0).toISOString());
    } finally {
      await h.close();
    }
  });

  test('the replica holding a session re-asserts Ready over what another replica wrote', async () => {
    const h = await setup({ leader: false });
    try {
      await h.addNode('mine', { phase: 'Pending' });
      h.connected.add('mine');
      h.health.start();
      h.health.connected('mine', hello);
      await waitFor(async () => (await h.phase('mine'))?.phase === 'Ready', { message: 'Ready at hello' });
      const cur = (await h.store.get('EdgeNode', 'mine')) as EdgeNode;
      // The replica that lost the session writes Disconnected after this one took it over.
      await h.store.updateStatus('EdgeNode', 'mine', { ...cur.status, phase: 'Disconnected', since: new Date(T0).toISOString() });
      await pause(200);
      assert.equal((await h.phase('mine'))?.phase, 'Disconnected', 'not at once after its own write (the cache may lag)');
      h.setNow(T0 + 500); // past the wait after its own write, before the next renew (1 s here)
      await waitFor(async () => (await h.phase('mine'))?.phase === 'Ready', { message: 'Ready again' });
    } finally {
      await h.close();
    }
  });

  test('peer votes: peers connected to other replicas count, so the leader\'s few votes cannot declare a node Down', async () => {
    const votes = new PeerVotes(Date.now);
    const h = await setup({ peerVotes: votes });
    try {
      const shop = nodeUnit('shop');
      shop.spec = { ...shop.spec, autonomy: { peerHealth: true } };
      await h.store.create(shop);
      const at = new Date(Date.now() - 1_000).toISOString(); // votes count only if newer than the disconnect
      // Renewed just now by their replicas (within the stale deadline of the real clock used here).
      for (const n of ['b', 'c', 'd']) await h.store.create({ ...edgeNode(n, { unit: 'shop' }), status: { phase: 'Ready', lastSeen: new Date().toISOString() } });
      await h.store.create({ ...edgeNode('x', { unit: 'shop' }), status: { phase: 'Disconnected', since: at, lastSeen: at } });
      h.connected.add('b'); // only b is on the leader; c and d are Ready on other replicas
      votes.record('b', { reachable: ['c', 'd'], unreachable: ['x'] });
      h.setNow(Date.now());
      h.health.start();
      await pause(300);
      assert.equal((await h.phase('x'))?.phase, 'Disconnected', '1 of 3 peers is no majority');
      votes.record('c', { reachable: [], unreachable: ['x'] }); // c's vote reaches the leader too (c moved here)
      h.connected.add('c');
      await waitFor(async () => (await h.phase('x'))?.phase === 'Down', { message: 'x Down with 2 of 3' });
    } finally {
      await h.close();
    }
  });

  test('SQLite mode (not replicated): no renew deadline, only the startup grace', async () => {
    const h = await setup({ replicated: false });
    try {
      await h.addNode('old', { phase: 'Ready', lastSeen: new Date(T0 - 600_000).toISOString() });
      h.health.start();
      await pause(200);
      assert.equal((await h.phase('old'))?.phase, 'Ready', 'within the 60 s startup grace nothing is marked');
    } finally {
      await h.close();
    }
  });
});
