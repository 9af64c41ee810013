import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EdgeNode, NodeUnit, UnitPeers } from '../../shared/api/index.js';
import { API_VERSION } from '../../shared/api/index.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import type { HelloFrame } from '../../shared/protocol/frames.js';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { NodeHealth } from '../../cloud-hub/health/node-health.js';
import { createHubMetrics } from '../../cloud-hub/metrics.js';
import { PeerVotes, peerVoteVerdict } from '../../cloud-hub/peers/peer-votes.js';
import { desiredUnitPeers, UnitPeersController } from '../../cloud-hub/peers/unit-peers-controller.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import { redactSecrets } from '../../cloud-hub/configs/secret-redaction.js';
import { SecretCodec } from '../../edge-agent/configs/secret-codec.js';
import { edgeNode, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const unit = (peerHealth?: boolean, rescheduleAfter?: string): NodeUnit => {
  const u = nodeUnit('shop');
  u.spec = { ...u.spec, autonomy: { ...(peerHealth === undefined ? {} : { peerHealth }), ...(rescheduleAfter ? { rescheduleAfter } : {}) } };
  return u;
};
const nodes = ['a', 'b', 'c', 'd'].map((n) => edgeNode(n, { unit: 'shop' }));
const node = (n: string) => nodes.find((x) => x.metadata.name === n) as EdgeNode;

test('peer vote rule: Down only with a strict majority of the connected peers voting unreachable, fresh votes, peerHealth on', () => {
  let now = 1_000_000;
  const votes = new PeerVotes(() => now, { freshMs: 30_000 });
  const connected = new Set(['a', 'b', 'd']);
  const isConnected = (n: string) => connected.has(n);
  votes.record('a', { reachable: ['b', 'd'], unreachable: ['c'] });
  votes.record('b', { reachable: ['a', 'd'], unreachable: ['c'] });
  assert.match(peerVoteVerdict(node('c'), unit(true), nodes, isConnected, votes) ?? '', /^2 of 3 connected peers of unit shop cannot reach it \(a, b\)$/);
  assert.equal(peerVoteVerdict(node('c'), unit(false), nodes, isConnected, votes), undefined, 'peerHealth off');
  assert.equal(peerVoteVerdict(node('c'), unit(undefined), nodes, isConnected, votes), undefined, 'peerHealth unset');
  votes.record('b', { reachable: ['a', 'c', 'd'], unreachable: [] });
  assert.equal(peerVoteVerdict(node('c'), unit(true), nodes, isConnected, votes), undefined, '1 of 3 is no majority');
  votes.record('d', { reachable: [], unreachable: ['c'] });
  assert.ok(peerVoteVerdict(node('c'), unit(true), nodes, isConnected, votes), 'a and d: 2 of 3');
  now += 31_000;
  assert.equal(peerVoteVerdict(node('c'), unit(true), nodes, isConnected, votes), undefined, 'stale votes do not count');
  votes.record('a', { reachable: [], unreachable: ['c'] });
  connected.clear();
  assert.equal(peerVoteVerdict(node('c'), unit(true), nodes, isConnected, votes), undefined, 'a silent unit is never Down by vote');
  // Exactly half is not a majority.
  connected.add('a').add('b');
  assert.equal(peerVoteVerdict(node('c'), unit(true), nodes, isConnected, votes), undefined);
});

test('node health: a disconnected node of a peerHealth unit becomes Down by votes; rescheduleAfter works as before; a silent unit stays Disconnected', async () => {
  const store = SqliteStore.open({ path: ':memory:' });
  const cache = new ObjectCache({ store, log: silentLogger() });
  await cache.start();
  const connected = new Set<string>();
  const votes = new PeerVotes(Date.now);
  const health = new NodeHealth(
    { store, cache, log: silentLogger(), metrics: createHubMetrics(createRegistry('t')), now: Date.now, isConnected: (n) => connected.has(n), peerVotes: votes },
    { flushIntervalMs: 30, startupGraceMs: 60_000 },
  );
  try {
    await store.create(unit(true));
    const lazy = nodeUnit('lazy');
    lazy.spec = { ...lazy.spec, autonomy: { rescheduleAfter: '100ms' } };
    await store.create(lazy);
    for (const n of ['a', 'b', 'c']) await store.create(edgeNode(n, { unit: 'shop' }));
    await store.create(edgeNode('z', { unit: 'lazy' }));
    health.start();
    const hello: HelloFrame = { type: 'hello', protocol: 1, appliedRevision: 0, agentVersion: 't', cached: [], peerEndpoint: '127.0.0.1:7946' };
    for (const n of ['a', 'b', 'c', 'z']) { connected.add(n); health.connected(n, hello); }
    await waitFor(() => (cache.get('EdgeNode', 'a') as EdgeNode | undefined)?.status?.peerEndpoint === '127.0.0.1:7946', { message: 'peer endpoint stored' });
    for (const n of ['c', 'z']) { connected.delete(n); health.disconnected(n); }
    await waitFor(() => (cache.get('EdgeNode', 'z') as EdgeNode).status?.phase === 'Down', { message: 'z Down by rescheduleAfter' });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal((cache.get('EdgeNode', 'c') as EdgeNode).status?.phase, 'Disconnected', 'no votes yet');
    votes.record('a', { reachable: ['b'], unreachable: ['c'] });
    votes.record('b', { reachable: ['a'], unreachable: ['c'] });
    const c = await waitFor(() => { const s = (cache.get('EdgeNode', 'c') as EdgeNode).status; return s?.phase === 'Down' ? s : undefined; }, { message: 'c Down by vote' });
    assert.match(c.reason ?? '', /unreachable from its unit: 2 of 2 connected peers/);
    // Back: Ready again.
    connected.add('c');
    health.connected('c', hello);
    await waitFor(() => (cache.get('EdgeNode', 'c') as EdgeNode).status?.phase === 'Ready', { message: 'c Ready again' });
  } finally {
    await health.stop();
    await cache.stop();
    await store.close();
  }
});

test('unit peers: listed nodes with endpoints, credential kept, rotated when a listed node leaves, previous dropped once applied', () => {
  const withStatus = (n: string, endpoint?: string, appliedRevision = 0): EdgeNode => ({ ...edgeNode(n, { unit: 'shop' }), status: { phase: 'Ready', appliedRevision, ...(endpoint ? { peerEndpoint: endpoint } : {}) } });
  let secrets = 0;
  const secret = () => `s${++secrets}`;
  assert.equal(desiredUnitPeers([], undefined, secret), undefined, 'no members, no object');
  assert.equal(desiredUnitPeers([withStatus('x')], undefined, secret), undefined, 'no member listens for peers, no object');
  const first = desiredUnitPeers([withStatus('b', '10.0.0.2:7946'), withStatus('a', '10.0.0.1:7946'), withStatus('x')], undefined, secret);
  assert.deepEqual(first, { peers: [{ node: 'a', endpoint: '10.0.0.1:7946' }, { node: 'b', endpoint: '10.0.0.2:7946' }], credential: 's1' });
  const held = (spec: UnitPeers['spec'], rv: number): UnitPeers => ({ apiVersion: API_VERSION, kind: 'UnitPeers', metadata: { name: 'shop', resourceVersion: String(rv) }, spec });
  const same = desiredUnitPeers([withStatus('a', '10.0.0.1:7946'), withStatus('b', '10.0.0.3:7946')], held(first!, 5), secret);
  assert.equal(same?.credential, 's1', 'an endpoint change keeps the credential');
  const rotated = desiredUnitPeers([withStatus('a', '10.0.0.1:7946', 5)], held(first!, 5), secret);
  assert.deepEqual(rotated, { peers: [{ node: 'a', endpoint: '10.0.0.1:7946' }], credential: 's2', previousCredential: 's1' }, 'b left: rotated');
  const pending = desiredUnitPeers([withStatus('a', '10.0.0.1:7946', 6)], held(rotated!, 7), secret);
  assert.equal(pending?.previousCredential, 's1', 'a has not applied revision 7 yet');
  const done = desiredUnitPeers([withStatus('a', '10.0.0.1:7946', 7)], held(rotated!, 7), secret);
  assert.deepEqual(done, { peers: [{ node: 'a', endpoint: '10.0.0.1:7946' }], credential: 's2' });
});

test('unit peers: the controller keeps the object, the API redacts it, the agent cache seals it', async () => {
  const store = SqliteStore.open({ path: ':memory:' });
  const cache = new ObjectCache({ store, log: silentLogger() });
  await cache.start();
  const controller = new UnitPeersController({ store, cache, log: silentLogger() });
  try {
    controller.start();
    await store.create(edgeNode('a', { unit: 'shop' }));
    await store.updateStatus('EdgeNode', 'a', { phase: 'Ready', peerEndpoint: '127.0.0.1:7001' });
    const peers = await waitFor(() => cache.get('UnitPeers', 'shop') as UnitPeers | undefined, { message: 'UnitPeers created' });
    assert.deepEqual(peers.spec.peers, [{ node: 'a', endpoint: '127.0.0.1:7001' }]);
    assert.ok(peers.spec.credential.length >= 43);
    assert.equal((redactSecrets(peers) as UnitPeers).spec.credential, '<redacted>');
    const codec = new SecretCodec(Buffer.alloc(32, 7));
    const sealed = codec.seal(peers);
    assert.doesNotMatch(JSON.stringify(sealed), new RegExp(peers.spec.credential));
    assert.deepEqual(codec.open(sealed), peers);
    await store.delete('EdgeNode', 'a');
    await waitFor(() => !cache.get('UnitPeers', 'shop'), { message: 'UnitPeers deleted with the last member' });
  } finally {
    await controller.stop();
    await cache.stop();
    await store.close();
  }
});
