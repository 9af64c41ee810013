// The local service registry on one real agent: HTTP registration and lookups, blocking and
// streaming watches, TTL expiry, DNS checked with dig (UDP and TCP), EdgeApp instances registered
// with their readiness, and a SIGKILLed agent that comes back with its records and a new incarnation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, killGroup } from '../helpers/cluster.js';
import { dig, openWatch, registryCall } from '../helpers/registry-client.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const AGENT_FLAGS = ['--dns-listen', '127.0.0.1:0', '--dns-ttl', '2s', '--registry-ttl-grace', '1', '--advertise-address', '127.0.0.7'];

interface Instances { service: string; instances: Array<{ id: string; health: string; address: string; port: number; nearness: string; lease: { kind: string } }> }
interface AgentStatus { registry: { incarnation: number; index: number; dns: string; instances: number }; instances: Record<string, { pid?: number }> }

describe('local service registry on one agent', () => {
  const cluster = new TestCluster();
  let agent: Awaited<ReturnType<TestCluster['startAgent']>>;
  const pids: number[] = [];
  const status = async () => (await (await fetch(`${agent.localApi}/v1/status`)).json()) as AgentStatus;

  before(async () => {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'shop' }, spec: {} });
    agent = await cluster.startAgent('reg-a', 'shop', AGENT_FLAGS);
  });
  after(async () => {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  });

  test('register, look up, bad bodies change nothing, deregister', async () => {
    const put = await registryCall(agent.localApi, 'PUT', '/v1/registry/services/web/instances/w1', { address: '10.0.0.1', port: 8080, protocol: 'http', metadata: { zone: 'a' }, weight: 50, ttl: '1h' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.ok(put.index > 0);
    assert.equal(put.header, put.index, 'the index in the header and the body');
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/web/instances/w2', { address: '10.0.0.2', port: 8080, weight: 500, ttl: '1h' });
    const get = await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/web');
    assert.deepEqual(get.body.instances.map((i) => [i.id, i.nearness]), [['w2', 'node'], ['w1', 'node']], 'heavier first within the node');
    const before = get.index;

    for (const [body, path] of [
      [{ address: 'not-an-ip', port: 1 }, '/address'],
      [{ address: '10.0.0.3', port: 70000 }, '/port'],
      [{ address: '10.0.0.3', port: 1, ttl: 'soon' }, '/ttl'],
      [{ address: '10.0.0.3', port: 1, colour: 'red' }, '/colour'],
      [{ address: '10.0.0.3', port: 1, weight: 0 }, '/weight'],
    ] as const) {
      const bad = await registryCall(agent.localApi, 'PUT', '/v1/registry/services/web/instances/w3', body);
      assert.equal(bad.status, 422, JSON.stringify(bad.body));
      assert.equal(bad.body.code, 'OUTPOST_INVALID');
      assert.ok(bad.body.fields?.some((f) => f.path === path), `${path} named in ${JSON.stringify(bad.body.fields)}`);
    }
    assert.equal((await registryCall(agent.localApi, 'PUT', '/v1/registry/services/web/instances/w3', '{"address":')).status, 400);
    assert.equal((await registryCall(agent.localApi, 'PUT', '/v1/registry/services/Web_App/instances/w3', { address: '10.0.0.3', port: 1 })).status, 422);
    assert.equal((await registryCall(agent.localApi, 'GET', '/v1/registry/services/web?index=abc')).status, 400);
    assert.equal((await registryCall(agent.localApi, 'POST', '/v1/registry/services/web')).status, 405);
    const after = await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/web');
    assert.equal(after.index, before, 'nothing changed');
    assert.equal(after.body.instances.length, 2);

    const list = await registryCall<{ services: Array<{ name: string; instances: number; passing: number }> }>(agent.localApi, 'GET', '/v1/registry/services');
    assert.deepEqual(list.body.services, [{ name: 'web', instances: 2, passing: 2 }]);
    const del = await registryCall(agent.localApi, 'DELETE', '/v1/registry/services/web/instances/w1');
    assert.equal(del.status, 200);
    assert.equal((await registryCall(agent.localApi, 'DELETE', '/v1/registry/services/web/instances/w1')).status, 404);
    assert.deepEqual((await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/web')).body.instances.map((i) => i.id), ['w2']);
  });

  test('a blocking query returns when the service changes past the index', async () => {
    const first = await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/api');
    assert.deepEqual(first.body.instances, []);
    const waiting = registryCall<Instances>(agent.localApi, 'GET', `/v1/registry/services/api?index=${first.index}&wait=30s`);
    // A change to another service does not answer it.
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/other/instances/o1', { address: '10.0.0.9', port: 1, ttl: '1h' });
    await waitFor(async () => (await status()).registry.index > first.index, { message: 'other registered' });
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/api/instances/a1', { address: '10.0.0.4', port: 9000, ttl: '1h' });
    const answered = await waiting;
    assert.equal(answered.status, 200);
    assert.ok(answered.index > first.index);
    assert.deepEqual(answered.body.instances.map((i) => i.id), ['a1']);
    // An index from the future (an earlier life of the agent) answers at once.
    const future = await registryCall<Instances>(agent.localApi, 'GET', `/v1/registry/services/api?index=${answered.index + 1000}&wait=5m`);
    assert.equal(future.body.instances.length, 1);
    // The service list blocks too, and answers when a service appears.
    const listWait = registryCall<{ services: Array<{ name: string }> }>(agent.localApi, 'GET', `/v1/registry/services?index=${answered.index}&wait=30s`);
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/newcomer/instances/n1', { address: '10.0.0.5', port: 1, ttl: '1h' });
    assert.ok((await listWait).body.services.some((x) => x.name === 'newcomer'));
    // wait without a change: answers with the same index when the wait runs out.
    const quiet = (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/api')).index;
    const idle = await registryCall<Instances>(agent.localApi, 'GET', `/v1/registry/services/api?index=${quiet}&wait=200ms`);
    assert.equal(idle.index, quiet);
  });

  test('a streaming watch sends complete snapshots with increasing indexes', async () => {
    const watch = openWatch(`${agent.localApi}/v1/registry/services/stream?watch=true`);
    try {
      await waitFor(() => watch.events.length >= 1, { message: 'first snapshot' });
      for (let i = 0; i < 5; i++) await registryCall(agent.localApi, 'PUT', `/v1/registry/services/stream/instances/s${i}`, { address: '10.0.1.1', port: 100 + i, ttl: '1h' });
      await waitFor(() => (watch.events.at(-1)?.result as Instances | undefined)?.instances.length === 5, { message: 'all five in a snapshot' });
      await registryCall(agent.localApi, 'DELETE', '/v1/registry/services/stream/instances/s0');
      await waitFor(() => (watch.events.at(-1)?.result as Instances | undefined)?.instances.length === 4, { message: 'the deletion' });
      const indexes = watch.events.map((e) => e.index);
      for (let i = 1; i < indexes.length; i++) assert.ok(indexes[i]! > indexes[i - 1]!, `indexes increase: ${indexes.join(',')}`);
      // Instance counts only go 0,1..5,4: a snapshot never drops an instance that is still registered.
      const counts = watch.events.map((e) => (e.result as Instances).instances.length);
      for (let i = 1; i < counts.length - 1; i++) assert.ok(counts[i]! >= counts[i - 1]!, `no partial list: ${counts.join(',')}`);
      assert.equal((await status()).registry.index >= indexes.at(-1)!, true);
    } finally {
      watch.close();
      await watch.done;
    }
  });

  test('a TTL instance that stops heartbeating turns critical, then is removed; heartbeats keep one', async () => {
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/ttl/instances/silent', { address: '10.0.2.1', port: 1, ttl: '1s' });
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/ttl/instances/alive', { address: '10.0.2.2', port: 1, ttl: '1s' });
    const beat = setInterval(() => { void registryCall(agent.localApi, 'PUT', '/v1/registry/services/ttl/instances/alive/heartbeat').catch(() => {}); }, 300);
    try {
      await waitFor(async () => {
        const all = await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/ttl?all=true');
        return all.body.instances.find((i) => i.id === 'silent')?.health === 'critical';
      }, { timeoutMs: 10_000, message: 'silent turns critical' });
      assert.deepEqual((await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/ttl')).body.instances.map((i) => i.id), ['alive'], 'critical is hidden by default');
      await waitFor(async () => (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/ttl?all=true')).body.instances.length === 1, { timeoutMs: 10_000, message: 'silent removed' });
      assert.equal((await registryCall(agent.localApi, 'PUT', '/v1/registry/services/ttl/instances/silent/heartbeat')).status, 404);
      const metrics = await (await fetch(`${agent.localApi}/metrics`)).text();
      assert.match(metrics, /outpost_agent_registry_ttl_expiries_total\{[^}]*outcome="removed"[^}]*\} [1-9]/);
      assert.match(metrics, /outpost_agent_registry_register_to_visible_seconds_count\{[^}]*\} [1-9]/);
    } finally {
      clearInterval(beat);
    }
  });

  test('DNS answers A and SRV nearest first over UDP and TCP; unknown names are NXDOMAIN; garbage is survived', async () => {
    const dns = (await status()).registry.dns;
    assert.match(dns, /^127\.0\.0\.1:\d+$/);
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/db/instances/d1', { address: '10.0.3.1', port: 5432, weight: 10, ttl: '1h' });
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/db/instances/d2', { address: '10.0.3.2', port: 5433, weight: 900, ttl: '1h' });
    await registryCall(agent.localApi, 'PUT', '/v1/registry/services/db/instances/d6', { address: 'fd00::6', port: 5434, ttl: '1h' });
    const a = await dig(dns, 'db.outpost', 'A');
    assert.equal(a.status, 'NOERROR');
    assert.deepEqual(a.answers.map((r) => r[4]), ['10.0.3.2', '10.0.3.1']);
    assert.equal(a.answers[0]?.[1], '2', '--dns-ttl');
    const aaaa = await dig(dns, 'db.shop.outpost', 'AAAA', ['+tcp']);
    assert.deepEqual(aaaa.answers.map((r) => r[4]), ['fd00::6']);
    const srv = await dig(dns, 'db.shop.outpost', 'SRV');
    assert.deepEqual(srv.answers.map((r) => r.slice(4)), [['10', '900', '5433', '0a000302.addr.outpost.'], ['10', '100', '5434', 'fd000000000000000000000000000006.addr.outpost.'], ['10', '10', '5432', '0a000301.addr.outpost.']]);
    assert.ok(srv.additionals.some((r) => r[0] === '0a000302.addr.outpost.' && r[4] === '10.0.3.2'));
    assert.deepEqual((await dig(dns, '_db._tcp.outpost', 'SRV', ['+tcp'])).answers.length, 3);
    assert.equal((await dig(dns, 'nothing.outpost', 'A')).status, 'NXDOMAIN');
    assert.equal((await dig(dns, 'db.other-unit.outpost', 'A')).status, 'NXDOMAIN');
    assert.equal((await dig(dns, 'example.com', 'A')).status, 'REFUSED');
    // Garbage and a truncated header over UDP: the server answers FORMERR or drops it, and keeps serving.
    const [host, port] = [dns.split(':')[0]!, Number(dns.split(':')[1])];
    const udp = createSocket('udp4');
    for (const junk of [Buffer.from('hello'), Buffer.alloc(40, 0xff), Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1])]) udp.send(junk, port, host);
    await new Promise((r) => setTimeout(r, 200));
    udp.close();
    assert.deepEqual((await dig(dns, 'db.outpost', 'A')).answers.length, 2);
  });

  test('EdgeApp instances with spec.service are registered, follow readiness, and go with the instance', async () => {
    const readyFile = join(cluster.dir, 'pos-ready');
    await cluster.api('POST', `${API}/edgeapps`, {
      apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'pos' },
      spec: {
        units: { names: ['shop'] }, service: { name: 'pos', port: 9100, protocol: 'http', metadata: { tier: 'front' } },
        template: { processes: [{ command: 'sleep', args: ['100000'], readinessProbe: { exec: { command: ['test', '-f', readyFile] }, periodSeconds: 1, failureThreshold: 1 } }] },
      },
    });
    const critical = await waitFor(async () => {
      const all = await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/pos?all=true');
      return all.body.instances[0];
    }, { timeoutMs: 20_000, message: 'pos registered' });
    assert.equal(critical.id, 'pos-shop-0');
    assert.equal(critical.health, 'critical', 'not ready yet');
    assert.equal(critical.address, '127.0.0.7', '--advertise-address');
    assert.equal(critical.port, 9100);
    assert.equal(critical.lease.kind, 'process');
    const pid = await waitFor(async () => (await status()).instances['pos-shop-0']?.pid, { message: 'pid' });
    pids.push(pid);
    const refused = await registryCall(agent.localApi, 'DELETE', '/v1/registry/services/pos/instances/pos-shop-0');
    assert.equal(refused.status, 409, 'the agent owns process-bound registrations');
    writeFileSync(readyFile, '');
    await waitFor(async () => (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/pos')).body.instances.length === 1, { timeoutMs: 15_000, message: 'passing once ready' });
    assert.deepEqual((await dig((await status()).registry.dns, 'pos.outpost', 'A')).answers.map((r) => r[4]), ['127.0.0.7']);
    rmSync(readyFile);
    await waitFor(async () => (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/pos')).body.instances.length === 0, { timeoutMs: 15_000, message: 'critical when not ready' });
    writeFileSync(readyFile, '');
    await waitFor(async () => (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/pos')).body.instances.length === 1, { timeoutMs: 15_000, message: 'passing again' });
  });

  test('a SIGKILLed agent comes back with incarnation+1 and its own records', async () => {
    const before = await status();
    const live = (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/db')).body.instances.map((i) => i.id);
    await agent.kill();
    agent = await cluster.startAgent('reg-a', 'shop', AGENT_FLAGS);
    const after = await status();
    assert.equal(after.registry.incarnation, before.registry.incarnation + 1);
    assert.deepEqual((await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/db')).body.instances.map((i) => i.id), live);
    assert.deepEqual((await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/web')).body.instances.map((i) => i.id), ['w2'], 'a deregistered instance stays gone');
    const pos = await waitFor(async () => (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/pos')).body.instances[0], { timeoutMs: 15_000, message: 'pos still registered and passing' });
    assert.equal(pos.id, 'pos-shop-0');
    assert.deepEqual((await dig(after.registry.dns, 'db.outpost', 'A', ['+tcp'])).answers.length, 2);
    // Deleting the app removes its registration.
    await cluster.api('DELETE', `${API}/edgeapps/pos`);
    await waitFor(async () => (await registryCall<Instances>(agent.localApi, 'GET', '/v1/registry/services/pos?all=true')).body.instances.length === 0, { timeoutMs: 20_000, message: 'pos deregistered with the app' });
  });
});
