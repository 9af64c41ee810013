import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry as PromRegistry } from 'prom-client';
import { WebSocket } from 'ws';
import { RegistryState, type RegisterInput } from '../../edge-agent/registry/registry-state.js';
import type { RegistryRecord } from '../../edge-agent/registry/records.js';
import { PeerMesh, type UnitPeer } from '../../edge-agent/registry/peers/peer-mesh.js';
import { createPeerMetrics, type PeerMetrics } from '../../edge-agent/registry/peers/peer-metrics.js';
import { differingOrigins, digestAll, staleIncarnationTombstones } from '../../edge-agent/registry/peers/digest.js';
import { chunkRecords, MAX_PEER_FRAME_BYTES, parsePeerFrame, recordProblem } from '../../edge-agent/registry/peers/peer-frames.js';
import { peerProof, verifyPeerProof } from '../../edge-agent/registry/peers/peer-auth.js';
import { createLogger } from '../../shared/logger.js';
import { FaultProxy } from '../../chaos/fault-proxy.js';
import { peerOptions } from '../../cli/commands/peer-flags.js';
import { waitFor } from '../helpers/wait.js';

const log = createLogger({ name: 'test', level: 'silent' });
const FAST = { detector: { periodMs: 200, probeTimeoutMs: 100, suspicionMs: 600 }, replicator: { antiEntropyMs: 300 } };

function input(service: string, id: string, extra: Partial<RegisterInput> = {}): RegisterInput {
  return { service, id, address: '10.0.0.1', port: 8080, protocol: 'http', metadata: {}, weight: 100, lease: { kind: 'ttl', ttlMs: 60_000 }, ...extra };
}

interface Node {
  name: string;
  db: Database.Database;
  state: RegistryState;
  mesh: PeerMesh;
  metrics: PeerMetrics;
  prom: PromRegistry;
  endpoint: string;
}

async function startNode(dir: string, name: string, unit = 'u1'): Promise<Node> {
  const db = new Database(join(dir, `${name}.db`));
  db.pragma('journal_mode = WAL');
  const state = new RegistryState({ db }, { node: name, unit });
  const prom = new PromRegistry();
  const metrics = createPeerMetrics(prom);
  const mesh = new PeerMesh({ registry: state, log, metrics }, { listen: { host: '127.0.0.1', port: 0 }, ...FAST });
  await mesh.start();
  mesh.advertised = `127.0.0.1:${mesh.listenAddress()?.port}`;
  return { name, db, state, mesh, metrics, prom, endpoint: mesh.advertised };
}

async function stopNode(n: Node): Promise<void> {
  await n.mesh.stop();
  n.db.close();
}

function connect(nodes: Node[], credentials: string[]): void {
  const peers: UnitPeer[] = nodes.map((n) => ({ node: n.name, endpoint: n.endpoint }));
  for (const n of nodes) n.mesh.setPeers(peers, credentials);
}

async function counter(n: Node, name: string): Promise<number> {
  const m = await n.prom.getSingleMetric(name)?.get();
  return m?.values.reduce((s, v) => s + v.value, 0) ?? 0;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-peers-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('peers: a registration on A is pushed to B and C; a deregistration follows; anti-entropy repairs a record a push missed', { timeout: 30_000 }, () => withDir(async (dir) => {
  const nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(dir, n)));
  const [a, b, c] = nodes as [Node, Node, Node];
  try {
    connect(nodes, ['secret-1']);
    a.state.register(input('web', 'a1'));
    for (const n of [b, c]) await waitFor(() => n.state.lookup('web').length === 1, { message: `web/a1 visible on ${n.name}` });
    assert.equal(b.state.lookup('web')[0]?.nearness, 'unit');
    assert.ok((await counter(b, 'outpost_agent_registry_peer_visible_seconds')) >= 0);
    a.state.deregister('web', 'a1');
    for (const n of [b, c]) await waitFor(() => n.state.lookup('web', { all: true }).length === 0, { message: `web/a1 gone on ${n.name}` });
    // A record only C holds (as if its push was lost): anti-entropy brings it to A and B.
    const lost = c.state.register(input('db', 'c1'));
    await waitFor(() => a.state.get(lost.key) && b.state.get(lost.key), { message: 'c1 replicated' });
    // C leaves the unit's list: its records stay on A, critical, until it is listed again.
    a.mesh.setPeers([{ node: 'a', endpoint: a.endpoint }, { node: 'b', endpoint: b.endpoint }], ['secret-1']);
    assert.equal(a.state.lookup('db', { all: true })[0]?.originSuspected, true);
    connect(nodes, ['secret-1']);
    assert.equal(a.state.lookup('db').length, 1);
  } finally {
    await Promise.all(nodes.map(stopNode));
  }
}));

test('peers: a peer without the unit credential is refused and changes nothing', { timeout: 30_000 }, () => withDir(async (dir) => {
  const a = await startNode(dir, 'a');
  const mallory = await startNode(dir, 'm');
  try {
    a.mesh.setPeers([{ node: 'm', endpoint: mallory.endpoint }], ['right']);
    mallory.mesh.setPeers([{ node: 'a', endpoint: a.endpoint }], ['wrong']);
    mallory.state.register(input('evil', 'm1'));
    await waitFor(async () => (await counter(a, 'outpost_agent_registry_peer_frames_refused_total')) > 0, { message: 'a refuses m' });
    assert.equal(a.state.get('evil/m1'), undefined);
    assert.equal(await counter(a, 'outpost_agent_registry_peer_links_up'), 0);
  } finally {
    await stopNode(a);
    await stopNode(mallory);
  }
}));

test('peers: garbage and unauthenticated requests on the peer port are refused; the listener keeps serving', { timeout: 30_000 }, () => withDir(async (dir) => {
  const a = await startNode(dir, 'a');
  const b = await startNode(dir, 'b');
  try {
    for (const payload of ['not json', JSON.stringify({ t: 'push', records: [{ key: 'x' }] }), JSON.stringify({ t: 'ping', seq: 1, members: [] })]) {
      const ws = new WebSocket(`ws://${a.endpoint}/peer/v1`);
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      ws.on('message', () => ws.send(payload));
      ws.on('error', () => undefined);
      assert.ok([4400, 4401].includes(await closed), 'closed with a protocol or auth code');
    }
    connect([a, b], ['s']);
    a.state.register(input('web', 'ok'));
    await waitFor(() => b.state.lookup('web').length === 1, { message: 'still replicating' });
  } finally {
    await stopNode(a);
    await stopNode(b);
  }
}));

test('peers: a dead peer is suspected and its instances turn critical on the others; it wins them back when it returns with a new incarnation', { timeout: 30_000 }, () => withDir(async (dir) => {
  const nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(dir, n)));
  let [a, b, c] = nodes as [Node, Node, Node];
  try {
    connect([a, b, c], ['s']);
    c.state.register(input('cam', 'c1'));
    await waitFor(() => a.state.lookup('cam').length === 1 && b.state.lookup('cam').length === 1, { message: 'c1 visible' });
    await stopNode(c);
    for (const n of [a, b]) {
      await waitFor(() => n.state.lookup('cam', { all: true })[0]?.originSuspected === true, { timeoutMs: 10_000, message: `c suspected on ${n.name}` });
      assert.equal(n.state.lookup('cam', { all: true })[0]?.health, 'critical');
      assert.equal(n.state.lookup('cam').length, 0, 'critical instances hidden by default');
    }
    assert.ok((await counter(a, 'outpost_agent_registry_suspicions_total')) >= 1);
    // Voted unreachable once dead (suspicion timeout without a refutation), not while only suspected.
    await waitFor(() => a.mesh.peers().find((p) => p.node === 'c')?.status === 'dead', { timeoutMs: 10_000, message: 'c dead on a' });
    assert.deepEqual(a.mesh.reachability().unreachable, ['c']);
    // C comes back (same data, next incarnation, another port): the hub's list names the new endpoint.
    c = await startNode(dir, 'c');
    assert.equal(c.state.incarnation, 2);
    connect([a, b, c], ['s']);
    // Alive again at once (handshake), and its re-announced record (next incarnation) replaces the old one.
    for (const n of [a, b]) await waitFor(() => n.state.lookup('cam').length === 1 && !n.state.lookup('cam')[0]?.originSuspected && n.state.get('cam/c1')?.version.incarnation === 2, { timeoutMs: 10_000, message: `c back on ${n.name}` });
  } finally {
    await Promise.all([a, b, c].map((n) => stopNode(n).catch(() => undefined)));
  }
}));

test('peers: a peer restarted at another address while the hub is away is dialled where its hello says', { timeout: 30_000 }, () => withDir(async (dir) => {
  const a = await startNode(dir, 'a');
  let c = await startNode(dir, 'c');
  try {
    connect([a, c], ['s']);
    c.state.register(input('cam', 'c1'));
    await waitFor(() => a.state.lookup('cam').length === 1, { message: 'c1 on a' });
    await stopNode(c);
    await waitFor(() => a.state.lookup('cam', { all: true })[0]?.originSuspected, { timeoutMs: 10_000, message: 'c suspected' });
    c = await startNode(dir, 'c');
    // Only C has a list (cached); A's still names C's old endpoint.
    c.mesh.setPeers([{ node: 'a', endpoint: a.endpoint }, { node: 'c', endpoint: c.endpoint }], ['s']);
    await waitFor(() => a.mesh.peers().find((p) => p.node === 'c')?.endpoint === c.endpoint && a.mesh.peers().find((p) => p.node === 'c')?.linkUp, { timeoutMs: 10_000, message: 'a dials c at its new endpoint' });
    await waitFor(() => a.state.lookup('cam').length === 1, { timeoutMs: 10_000, message: 'c1 passing on a again' });
  } finally {
    await stopNode(a);
    await stopNode(c).catch(() => undefined);
  }
}));

test('peers: records of an older incarnation that the origin no longer has are retired', { timeout: 30_000 }, () => withDir(async (dir) => {
  const a = await startNode(dir, 'a');
  const c = await startNode(dir, 'c');
  try {
    const ghost: RegistryRecord = {
      key: 'cam/ghost', origin: 'c', version: { incarnation: 0, counter: 9 },
      instance: { service: 'cam', id: 'ghost', node: 'c', unit: 'u1', address: '10.0.0.9', port: 1, protocol: 'tcp', metadata: {}, weight: 100, health: 'passing', lease: { kind: 'ttl', ttlMs: 1000 } },
    };
    a.state.mergeRemote([ghost]);
    assert.equal(a.state.lookup('cam').length, 1);
    connect([a, c], ['s']);
    await waitFor(() => a.state.lookup('cam', { all: true }).length === 0, { message: 'ghost retired' });
  } finally {
    await stopNode(a);
    await stopNode(c);
  }
}));

test('peers: with the link between A and C cut, records flow through B; after the cut heals, all converge', { timeout: 30_000 }, () => withDir(async (dir) => {
  const nodes = await Promise.all(['a', 'b', 'c'].map((n) => startNode(dir, n)));
  const [a, b, c] = nodes as [Node, Node, Node];
  const port = (n: Node) => Number(n.endpoint.split(':')[1]);
  // A dials C, and C dials A, through their own proxies; B is reached directly by both.
  const aToC = new FaultProxy({ targetPort: port(c) });
  const cToA = new FaultProxy({ targetPort: port(a) });
  await aToC.start();
  await cToA.start();
  try {
    const direct = (n: Node): UnitPeer => ({ node: n.name, endpoint: n.endpoint });
    // A and C do not tell their direct endpoints, or they would dial each other around the proxies.
    a.mesh.advertised = undefined;
    c.mesh.advertised = undefined;
    a.mesh.setPeers([direct(b), { node: 'c', endpoint: `127.0.0.1:${aToC.port}` }], ['s']);
    b.mesh.setPeers([direct(a), direct(c)], ['s']);
    c.mesh.setPeers([direct(b), { node: 'a', endpoint: `127.0.0.1:${cToA.port}` }], ['s']);
    a.state.register(input('web', 'before'));
    await waitFor(() => c.state.lookup('web').length === 1, { message: 'before the cut' });
    aToC.cut();
    cToA.cut();
    await waitFor(() => !a.mesh.peers().find((p) => p.node === 'c')?.linkUp, { message: 'a-c link down' });
    a.state.register(input('web', 'during'));
    c.state.register(input('db', 'c-during'));
    a.state.deregister('web', 'before');
    await waitFor(() => c.state.get('web/during')?.instance && !c.state.get('web/before')?.instance, { timeoutMs: 10_000, message: 'a\'s changes reach c through b' });
    await waitFor(() => a.state.get('db/c-during')?.instance, { timeoutMs: 10_000, message: 'c\'s change reaches a through b' });
    aToC.restore();
    cToA.restore();
    await waitFor(() => a.mesh.peers().find((p) => p.node === 'c')?.linkUp && c.mesh.peers().find((p) => p.node === 'a')?.linkUp, { timeoutMs: 10_000, message: 'a-c link back' });
    a.state.register(input('web', 'after'));
    await waitFor(() => c.state.get('web/after')?.instance, { message: 'pushed directly again' });
    for (const n of nodes) assert.deepEqual(n.state.lookup('web', { all: true }).map((i) => i.id).sort(), ['after', 'during'], `web on ${n.name}`);
  } finally {
    await aToC.stop();
    await cToA.stop();
    await Promise.all(nodes.map(stopNode));
  }
}));

test('peer protocol pieces: digests, stale-incarnation tombstones, record checks, proofs', () => {
  const rec = (origin: string, id: string, inc: number, counter: number, live = true): RegistryRecord => ({
    key: `s/${id}`, origin, version: { incarnation: inc, counter },
    ...(live ? { instance: { service: 's', id, node: origin, unit: 'u', address: '10.0.0.1', port: 1, protocol: 'tcp', metadata: {}, weight: 1, health: 'passing', lease: { kind: 'ttl', ttlMs: 1 } } } : {}),
  });
  const ours = digestAll([rec('a', '1', 1, 1), rec('b', '2', 1, 1)]);
  const theirs = [...digestAll([rec('a', '1', 1, 2), rec('c', '3', 1, 1)]).values()];
  assert.deepEqual(differingOrigins(ours, theirs), { weSend: ['a', 'b'], weWant: ['a', 'c'] });
  // Tombstones do not count: a replica that still holds one is in step.
  assert.deepEqual(digestAll([rec('a', '1', 1, 1), rec('a', '9', 1, 5, false)]).get('a')?.hash, ours.get('a')?.hash);
  const stale = staleIncarnationTombstones([rec('c', 'old', 1, 7), rec('c', 'kept', 1, 3), rec('c', 'new', 2, 1)], 'c', 2, new Set(['s/kept', 's/new']));
  assert.deepEqual(stale, [{ key: 's/old', origin: 'c', version: { incarnation: 2, counter: 0 } }]);
  assert.match(recordProblem(rec('a', '1', 1, 1), 'other') ?? '', /belongs to unit u/);
  assert.match(recordProblem({ ...rec('a', '1', 1, 1), origin: 'b' }, 'u') ?? '', /origin b/);
  assert.throws(() => parsePeerFrame('{"t":"ping","seq":-1,"members":[]}'), /invalid "ping" peer frame at \/seq/);
  assert.throws(() => parsePeerFrame('nope'), /not JSON/);
  // Large records (64 metadata values of 512 chars) are split by size, each frame under the limit.
  const big = Array.from({ length: 300 }, (_, i) => {
    const r = rec('a', String(i), 1, 1);
    return { ...r, instance: { ...r.instance!, metadata: Object.fromEntries(Array.from({ length: 64 }, (_x, k) => [`k${k}`, 'v'.repeat(512)])) } };
  });
  const chunks = chunkRecords(big);
  assert.ok(chunks.length > 1);
  assert.equal(chunks.flat().length, 300);
  for (const c of chunks) assert.ok(JSON.stringify({ t: 'records', records: c }).length < MAX_PEER_FRAME_BYTES);
  assert.throws(() => parsePeerFrame('{"t":"gossip"}'), /unknown peer frame type "gossip"/);
  assert.deepEqual(peerOptions({ peerListen: '0.0.0.0:7946' }), { listen: { host: '0.0.0.0', port: 7946 } });
  assert.deepEqual(peerOptions({ peerListen: 'none' }), {});
  assert.throws(() => peerOptions({ peerListen: 'everywhere' }), /--peer-listen everywhere: expected HOST:PORT/);
  assert.throws(() => peerOptions({ peerListen: '0.0.0.0:7946', peerAdvertise: '10.0.0.5' }), /--peer-advertise 10.0.0.5: expected HOST:PORT/);
  assert.throws(() => peerOptions({ peerListen: 'none', peerAdvertise: '10.0.0.5:7946' }), /needs a peer listener/);
  const proof = peerProof('k', 'client', 'u', 'a', 'b', 'n1aaaaaaaaaaaaaaaa', 'n2aaaaaaaaaaaaaaaa');
  assert.ok(verifyPeerProof(['old', 'k'], proof, 'client', 'u', 'a', 'b', 'n1aaaaaaaaaaaaaaaa', 'n2aaaaaaaaaaaaaaaa'));
  assert.ok(!verifyPeerProof(['k'], proof, 'server', 'u', 'a', 'b', 'n1aaaaaaaaaaaaaaaa', 'n2aaaaaaaaaaaaaaaa'), 'a client proof is no server proof');
});
