import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Registry as PromRegistry } from 'prom-client';
import { setTimeout as delay } from 'node:timers/promises';
import dnsPacket from 'dns-packet';
import { WebSocket } from 'ws';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { PeerVotes, peerVoteVerdict } from '../../cloud-hub/peers/peer-votes.js';
import { GlobalRegistryView } from '../../cloud-hub/registry/global-view.js';
import { createRegistryMetrics } from '../../cloud-hub/registry/registry-metrics.js';
import { ViewJanitor } from '../../cloud-hub/registry/view-janitor.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import { DnsServer } from '../../edge-agent/registry/dns-server.js';
import { parseRegisterBody } from '../../edge-agent/registry/instance-body.js';
import { parsePeerFrame } from '../../edge-agent/registry/peers/peer-frames.js';
import { isOutpostError } from '../../shared/errors.js';
import { reportItemProblem } from '../../shared/protocol/frames.js';
import type { InstanceView } from '../../edge-agent/registry/records.js';
import { PeerServer } from '../../edge-agent/registry/peers/peer-server.js';
import { PeerMesh } from '../../edge-agent/registry/peers/peer-mesh.js';
import { createPeerMetrics } from '../../edge-agent/registry/peers/peer-metrics.js';
import { RegistryState } from '../../edge-agent/registry/registry-state.js';
import { DesiredCache } from '../../edge-agent/cache/desired-cache.js';
import { Outbox } from '../../edge-agent/cache/outbox.js';
import { AgentPeers } from '../../edge-agent/registry/peers/agent-peers.js';
import { edgeNode, nodeUnit } from '../helpers/objects.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';
import { createLogger } from '../../shared/logger.js';

// Regression tests of the issue 6 review: inputs from the network that used to end the agent.

const log = createLogger({ name: 'test', level: 'silent' });

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(out); }, 5_000);
    sock.on('data', (d) => { out += d.toString(); });
    sock.on('error', () => undefined);
    sock.on('close', () => { clearTimeout(timer); resolve(out); });
    sock.write(text);
  });
}

test('peer server: an upgrade request whose target URL cannot be parsed gets 404 and the listener keeps serving', { timeout: 20_000 }, async () => {
  const server = new PeerServer({ self: 'a', unit: 'u1', incarnation: 1, secrets: () => ['s'], log, onRequest() {}, onPeerHello() {}, onRefused() {} });
  const { port } = await server.listen('127.0.0.1', 0);
  try {
    const upgrade = 'Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    for (const target of ['//[', 'http://[::1', '/peer/v1/../x']) {
      const answer = await rawRequest(port, `GET ${target} HTTP/1.1\r\n${upgrade}`);
      assert.match(answer, /^HTTP\/1\.1 404/, `target ${target}`);
    }
    // A client that resets while the 404 is written does not raise an unhandled socket error.
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.write(`GET /nope HTTP/1.1\r\n${upgrade}`, () => sock.resetAndDestroy());
    // Still serving: a WebSocket to the right path gets the challenge.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/peer/v1`);
    ws.on('error', () => undefined);
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no challenge within 5 s')), 5_000);
      ws.once('message', (d) => { clearTimeout(timer); resolve(d.toString()); });
    });
    assert.equal((JSON.parse(first) as { t: string }).t, 'challenge');
    ws.terminate();
  } finally {
    await server.close();
  }
});

test('dns: a UDP answer that is ready only after the server stopped is dropped, not thrown out of the agent', { timeout: 20_000 }, async () => {
  let release: (v: InstanceView[]) => void = () => undefined;
  let asked = 0;
  const server = new DnsServer({
    log,
    // A lookup that waits (as one through the hub does) until the test lets it answer.
    lookup: () => { asked++; return new Promise<InstanceView[]>((resolve) => { release = resolve; }); },
  }, { host: '127.0.0.1', port: 0 });
  await server.start();
  const client = createSocket('udp4');
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => rejections.push(err);
  process.on('unhandledRejection', onRejection);
  try {
    client.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name: 'web.outpost', class: 'IN' }] }), server.port, '127.0.0.1');
    await waitFor(() => asked === 1, { message: 'the query reached the lookup' });
    await server.stop();
    release([]);
    // Let the answer's promise chain run to its end (it used to reject: send on a closed socket).
    for (let i = 0; i < 5; i++) await delay(10);
    assert.deepEqual(rejections, []);
  } finally {
    process.off('unhandledRejection', onRejection);
    client.close();
  }
});

test('peer health vote: a peer only suspected is not voted unreachable (a vote can make the hub declare it Down)', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rv6-'));
  // Suspicion outlasts the test: the peer stays suspect, never dead.
  const options = { listen: { host: '127.0.0.1', port: 0 }, detector: { periodMs: 200, probeTimeoutMs: 100, suspicionMs: 600_000 }, replicator: { antiEntropyMs: 300 } };
  const nodes = ['a', 'b'].map((name) => {
    const db = new Database(join(dir, `${name}.db`));
    const state = new RegistryState({ db }, { node: name, unit: 'u1' });
    return { name, db, mesh: new PeerMesh({ registry: state, log, metrics: createPeerMetrics(new PromRegistry()) }, options) };
  });
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  try {
    for (const n of nodes) await n.mesh.start();
    const peers = nodes.map((n) => ({ node: n.name, endpoint: `127.0.0.1:${n.mesh.listenAddress()?.port}` }));
    for (const n of nodes) n.mesh.setPeers(peers, ['s']);
    await waitFor(() => a.mesh.reachability().reachable.includes('b'), { timeoutMs: 10_000, message: 'b reachable from a' });
    await b.mesh.stop();
    await waitFor(() => a.mesh.peers().find((p) => p.node === 'b')?.status === 'suspect', { timeoutMs: 10_000, message: 'b suspected on a' });
    assert.deepEqual(a.mesh.reachability(), { reachable: [], unreachable: [] });
  } finally {
    for (const n of nodes) {
      await n.mesh.stop().catch(() => undefined);
      n.db.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hub view janitor: a tombstone pass that fails (view file unusable) is logged and retried, not thrown out of the timer', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rv6-'));
  const store = SqliteStore.open({ path: ':memory:' });
  const cache = new ObjectCache({ store, log });
  const view = new GlobalRegistryView({ path: join(dir, 'registry.db') });
  const errors: string[] = [];
  const spy = Object.assign(Object.create(log) as typeof log, { error: (_obj: unknown, msg?: string) => { errors.push(msg ?? ''); } });
  const janitor = new ViewJanitor({ view, cache, metrics: createRegistryMetrics(new PromRegistry(), () => view.size()), log: spy }, { intervalMs: 20 });
  try {
    janitor.start();
    view.close(); // every later pass throws: "The database connection is not open"
    await waitFor(() => errors.length >= 2, { message: 'two failed passes logged' });
    assert.match(errors[0] ?? '', /tombstones failed/);
  } finally {
    janitor.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry state: a tombstone sweep that cannot write registry.db is logged and retried, not thrown out of the timer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rv6-'));
  const db = new Database(join(dir, 'registry.db'));
  const clock = new ManualClock();
  const errors: string[] = [];
  const spy = Object.assign(Object.create(log) as typeof log, { error: (_obj: unknown, msg?: string) => { errors.push(msg ?? ''); } });
  const state = new RegistryState({ db, clock, log: spy }, { node: 'a', unit: 'u1', tombstoneRetentionMs: 4_000 });
  try {
    state.register({ service: 'web', id: 'w1', address: '10.0.0.1', port: 80, protocol: 'http', metadata: {}, weight: 100, lease: { kind: 'ttl', ttlMs: 60_000 } });
    state.deregister('web', 'w1');
    state.start();
    db.close(); // registry.db unusable: the sweep's delete throws
    assert.doesNotThrow(() => clock.advance(10_000));
    assert.ok(errors.length >= 1 && /tombstones failed/.test(errors[0] ?? ''), `logged: ${errors.join('; ')}`);
    assert.equal(state.counts().tombstones, 1, 'the tombstone is kept while registry.db still has it');
    assert.ok(clock.pending >= 1, 'the sweep is scheduled again');
  } finally {
    state.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('peer health vote: an outbox that cannot be written (disk full) is logged and retried, never thrown out of a timer or start()', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rv6-'));
  const db = new Database(join(dir, 'agent.db'));
  const outboxDb = new Database(join(dir, 'outbox.db'));
  const cache = new DesiredCache(db);
  const unit = nodeUnit('u1');
  unit.spec = { ...unit.spec, autonomy: { peerHealth: true } };
  cache.apply({ type: 'sync', revision: 1, objects: [unit], deletes: [] });
  const outbox = new Outbox(outboxDb);
  const errors: string[] = [];
  const spy = Object.assign(Object.create(log) as typeof log, { error: (_obj: unknown, msg?: string) => { errors.push(msg ?? ''); } });
  const state = new RegistryState({ db }, { node: 'a', unit: 'u1' });
  const peers = new AgentPeers({ registry: state, cache, outbox, log: spy, metrics: new PromRegistry() }, { listen: { host: '127.0.0.1', port: 0 }, voteIntervalMs: 30 });
  outboxDb.close(); // every put throws
  try {
    await peers.start();
    await waitFor(() => errors.filter((e) => /peer health vote/.test(e)).length >= 2, { message: 'failed votes logged and retried' });
  } finally {
    await peers.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry state: change indexes keep growing across restarts, so a watcher never waits past changes it did not see', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rv6-'));
  const path = join(dir, 'registry.db');
  const reg = (state: RegistryState, id: string) => state.register({ service: 'web', id, address: '10.0.0.1', port: 80, protocol: 'http', metadata: {}, weight: 100, lease: { kind: 'ttl', ttlMs: 60_000 } });
  try {
    let db = new Database(path);
    let state = new RegistryState({ db }, { node: 'a', unit: 'u1' });
    for (let i = 0; i < 5; i++) reg(state, `w${i}`);
    for (let i = 0; i < 5; i++) state.deregister('web', `w${i}`);
    const lastOfFirstRun = state.index();
    const serviceOfFirstRun = state.serviceIndex('web');
    db.close();
    // Second run: one change to the service. A watcher holding index lastOfFirstRun must see it.
    db = new Database(path);
    state = new RegistryState({ db }, { node: 'a', unit: 'u1' });
    assert.ok(state.index() >= lastOfFirstRun, `index ${state.index()} after restart is below ${lastOfFirstRun}`);
    reg(state, 'again');
    assert.ok(state.serviceIndex('web') > lastOfFirstRun && state.serviceIndex('web') > serviceOfFirstRun, 'the change is past every index of the first run');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('peers: a node that left the peer list stays critical also on a peer that restarted since (its records come back through anti-entropy)', { timeout: 40_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rv6-'));
  const options = { listen: { host: '127.0.0.1', port: 0 }, detector: { periodMs: 200, probeTimeoutMs: 100, suspicionMs: 600 }, replicator: { antiEntropyMs: 200 } };
  const start = async (name: string) => {
    const db = new Database(join(dir, `${name}.db`));
    const state = new RegistryState({ db }, { node: name, unit: 'u1' });
    const mesh = new PeerMesh({ registry: state, log, metrics: createPeerMetrics(new PromRegistry()) }, options);
    await mesh.start();
    return { name, db, state, mesh, endpoint: `127.0.0.1:${mesh.listenAddress()?.port}` };
  };
  type N = Awaited<ReturnType<typeof start>>;
  const list = (nodes: N[]) => nodes.map((n) => ({ node: n.name, endpoint: n.endpoint }));
  const stop = async (n: N) => { await n.mesh.stop().catch(() => undefined); if (n.db.open) n.db.close(); };
  const a = await start('a');
  let b = await start('b');
  const x = await start('x');
  try {
    for (const n of [a, b, x]) n.mesh.setPeers(list([a, b, x]), ['s']);
    x.state.register({ service: 'cam', id: 'x1', address: '10.0.0.9', port: 80, protocol: 'http', metadata: {}, weight: 100, lease: { kind: 'ttl', ttlMs: 60_000 } });
    await waitFor(() => a.state.lookup('cam').length === 1 && b.state.lookup('cam').length === 1, { message: 'x1 on a and b' });
    // x leaves the list (left the unit); a still holds its record, critical.
    await stop(x);
    for (const n of [a, b]) n.mesh.setPeers(list([a, b]), ['s']);
    await waitFor(() => a.state.lookup('cam', { all: true })[0]?.health === 'critical', { message: 'x1 critical on a' });
    // b restarts: it never saw x in its list, and gets x1 back from a.
    await stop(b);
    b = await start('b');
    a.mesh.setPeers(list([a, b]), ['s']);
    b.mesh.setPeers(list([a, b]), ['s']);
    await waitFor(() => b.state.get('cam/x1')?.instance, { timeoutMs: 10_000, message: 'x1 back on b through anti-entropy' });
    assert.deepEqual(b.state.lookup('cam'), [], 'not served as passing');
    assert.equal(b.state.lookup('cam', { all: true })[0]?.originSuspected, true);
  } finally {
    for (const n of [a, b, x]) await stop(n);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry wire: every address the HTTP API accepts passes the peer frame and hub report schemas, and no other', () => {
  // 58 characters: accepted over HTTP, but the peer frame schema allowed 45, so each push or
  // exchange carrying it was refused and the peer link closed, over and over.
  const longZone = `fe80::1%${'e'.repeat(50)}`;
  const record = (address: string) => {
    const input = parseRegisterBody('web', 'w1', { address, port: 80 });
    return { key: 'web/w1', origin: 'a', version: { incarnation: 1, counter: 1 }, instance: { ...input, node: 'a', unit: 'u1', health: 'passing' } };
  };
  for (const address of ['10.0.0.1', 'fd00::1', longZone, '0000:0000:0000:0000:0000:ffff:192.168.100.200']) {
    const r = record(address);
    assert.doesNotThrow(() => parsePeerFrame(JSON.stringify({ t: 'push', records: [r] })), address);
    assert.equal(reportItemProblem({ seq: 1, kind: 'registry-record', body: r }), undefined, address);
  }
  // isIP() takes a zone with ":" in it, the wire does not: refused at registration, naming the field.
  assert.throws(() => parseRegisterBody('web', 'w1', { address: 'fe80::1%eth0:1', port: 80 }), (e) => isOutpostError(e, 'INVALID') && e.fields?.[0]?.path === '/address');
});

test('peer vote rule: votes that arrived before the node disconnected (about an earlier absence) do not declare it Down', () => {
  let now = 1_000_000;
  const votes = new PeerVotes(() => now);
  const shop = nodeUnit('shop');
  shop.spec = { ...shop.spec, autonomy: { peerHealth: true } };
  const members = ['a', 'b', 'c'].map((n) => edgeNode(n, { unit: 'shop' }));
  const c = members[2] as (typeof members)[number];
  const isConnected = (n: string) => n !== 'c';
  // c was away a moment ago: a and b said so. It came back, then dropped again at `since`.
  votes.record('a', { reachable: ['b'], unreachable: ['c'] });
  votes.record('b', { reachable: ['a'], unreachable: ['c'] });
  now += 5_000;
  const since = now;
  assert.equal(peerVoteVerdict(c, shop, members, isConnected, votes, since), undefined, 'no vote since it disconnected');
  now += 2_000;
  votes.record('a', { reachable: ['b'], unreachable: ['c'] });
  assert.equal(peerVoteVerdict(c, shop, members, isConnected, votes, since), undefined, '1 of 2 since then');
  votes.record('b', { reachable: ['a'], unreachable: ['c'] });
  assert.match(peerVoteVerdict(c, shop, members, isConnected, votes, since) ?? '', /^2 of 2 connected peers/);
});

test('peer server: connections that stay in their handshake are bounded; a slot frees when one closes', { timeout: 20_000 }, async () => {
  const server = new PeerServer({ self: 'a', unit: 'u1', incarnation: 1, secrets: () => ['s'], log, onRequest() {}, onPeerHello() {}, onRefused() {} }, { maxUnauthenticated: 2 });
  const { port } = await server.listen('127.0.0.1', 0);
  const open = () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/peer/v1`);
    ws.on('error', () => undefined);
    const first = new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('nothing within 5 s'), 5_000);
      ws.once('message', (d) => { clearTimeout(timer); resolve(`challenge:${(JSON.parse(d.toString()) as { t: string }).t}`); });
      ws.once('close', (code) => { clearTimeout(timer); resolve(`closed:${code}`); });
    });
    return { ws, first };
  };
  const sockets: WebSocket[] = [];
  try {
    const [one, two] = [open(), open()];
    sockets.push(one.ws, two.ws);
    assert.equal(await one.first, 'challenge:challenge');
    assert.equal(await two.first, 'challenge:challenge');
    const three = open();
    sockets.push(three.ws);
    assert.equal(await three.first, 'closed:1013', 'a third one waiting in its handshake is refused');
    const closed = new Promise((resolve) => one.ws.once('close', resolve));
    one.ws.close();
    await closed;
    await waitFor(async () => { const next = open(); sockets.push(next.ws); return (await next.first) === 'challenge:challenge'; }, { message: 'a slot is free again' });
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.close();
  }
});

test('registry incarnation: a record in this node\'s name with an absurd incarnation is refused, so it cannot push this node past what peers accept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-rv6-'));
  const db = new Database(join(dir, 'registry.db'));
  try {
    const state = new RegistryState({ db }, { node: 'a', unit: 'u1' });
    const instance = { service: 'web', id: 'w1', node: 'a', unit: 'u1', address: '10.0.0.1', port: 80, protocol: 'http' as const, metadata: {}, weight: 100, health: 'passing' as const, lease: { kind: 'ttl' as const, ttlMs: 60_000 } };
    const poisoned = { key: 'web/w1', origin: 'a', version: { incarnation: 2 ** 40, counter: 1 }, instance };
    assert.throws(() => parsePeerFrame(JSON.stringify({ t: 'push', records: [poisoned] })), /version\/incarnation/);
    assert.ok(reportItemProblem({ seq: 1, kind: 'registry-record', body: poisoned }), 'the hub refuses it too');
    assert.deepEqual(state.mergeRemote([poisoned]), []);
    assert.equal(state.incarnation, 1, 'not raised to follow it');
    // A plausible one (a wiped data directory, peers remember later runs) is still answered.
    assert.equal(state.mergeRemote([{ ...poisoned, version: { incarnation: 7, counter: 3 } }]).length, 1);
    assert.equal(state.incarnation, 8);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
