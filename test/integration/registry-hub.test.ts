// The hub's global registry view (issue 6), fed by raw agent sessions: merge by the supersedes
// rule, node authorization of registry reports, the admin API and CLI, the agents' endpoints
// (other units' services, digests), removal with the node, and the view across a hub restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub, type RunningHub } from '../../cloud-hub/hub.js';
import { silentLogger } from '../../shared/logger.js';
import type { HubFrame, ReportedFrame, SyncFrame } from '../../shared/protocol/frames.js';
import { originDigests } from '../../shared/registry/digest.js';
import type { RegistryRecord, ServiceInstance } from '../../shared/registry/records.js';
import { runCli } from '../helpers/cluster.js';
import { nodeUnit } from '../helpers/objects.js';
import { connectRaw, type RawAgent } from '../helpers/raw-agent.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const isSync = (f: HubFrame): f is SyncFrame => f.type === 'sync';
const reportedUpTo = (seq: number) => (f: HubFrame): f is ReportedFrame => f.type === 'reported' && f.ackSeq === seq;

function record(origin: string, unit: string, service: string, id: string, version: [number, number], extra: Partial<ServiceInstance> = {}): RegistryRecord {
  return {
    key: `${service}/${id}`, origin, version: { incarnation: version[0], counter: version[1] },
    instance: { service, id, node: origin, unit, address: '10.0.0.1', port: 8080, protocol: 'http', metadata: {}, weight: 100, health: 'passing', lease: { kind: 'ttl', ttlMs: 5000 }, ...extra },
  };
}
const tombstone = (origin: string, key: string, version: [number, number]): RegistryRecord => ({ key, origin, version: { incarnation: version[0], counter: version[1] } });

describe('global registry view at the hub', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-registry-hub-'));
  let hub: RunningHub;
  const cred: Record<string, string> = {};
  const agents: RawAgent[] = [];
  let seq = 1;

  const start = async (port = 0) => {
    hub = await startHub({ dataDir: join(dir, 'hub'), host: '127.0.0.1', port, pingIntervalMs: 500, readDeadlineMs: 3000 }, silentLogger());
  };
  const api = async <T>(method: string, path: string, body?: unknown, token = hub.adminToken): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${hub.url}${path}`, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const connect = async (node: string) => {
    const a = await connectRaw(hub.url, cred[node] ?? '');
    agents.push(a);
    a.hello();
    await a.next(isSync);
    return a;
  };
  /** Sends records as one report frame; returns the hub's answer. */
  const report = async (a: RawAgent, records: unknown[]): Promise<ReportedFrame> => {
    const items = records.map((body) => ({ seq: seq++, kind: 'registry-record', body }));
    a.send({ type: 'report', items });
    return a.next(reportedUpTo(seq - 1));
  };

  before(async () => {
    await start();
    for (const u of ['site-a', 'site-b']) assert.equal((await api('POST', `${API}/nodeunits`, { ...nodeUnit(u) })).status, 201);
    for (const [node, unit] of [['node-a1', 'site-a'], ['node-a2', 'site-a'], ['node-b', 'site-b']] as const) {
      const token = (await api<{ token: string }>('POST', `${API}/jointokens`, { unit })).body.token;
      const res = await fetch(`${hub.url}/agent/v1/join`, { method: 'POST', body: JSON.stringify({ token, node }), headers: { 'Content-Type': 'application/json' } });
      cred[node] = ((await res.json()) as { credential: string }).credential;
    }
  });

  after(async () => {
    for (const a of agents) a.ws.terminate();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('own and replicated records of the unit are merged; older versions and duplicates change nothing', async () => {
    const a1 = await connect('node-a1');
    const b = await connect('node-b');
    let r = await report(a1, [record('node-a1', 'site-a', 'web', 'w1', [1, 1]), record('node-a2', 'site-a', 'web', 'w2', [1, 1], { health: 'critical' }), record('node-a1', 'site-a', 'db', 'd1', [1, 2])]);
    assert.deepEqual(r.rejected, []);
    r = await report(b, [record('node-b', 'site-b', 'web', 'w1', [3, 1], { address: '10.0.1.1' })]);
    assert.deepEqual(r.rejected, []);
    // Same key, older version (a lagging replica on node-a2 reporting it), then a duplicate.
    const a2 = await connect('node-a2');
    r = await report(a2, [record('node-a1', 'site-a', 'web', 'w1', [0, 9], { port: 1 }), record('node-a1', 'site-a', 'db', 'd1', [1, 2])]);
    assert.deepEqual(r.rejected, []);

    const list = await api<{ items: { service: string; units: string[]; healthy: number; total: number }[] }>('GET', `${API}/services`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items, [
      { service: 'db', units: ['site-a'], healthy: 1, total: 1 },
      { service: 'web', units: ['site-a', 'site-b'], healthy: 2, total: 3 },
    ]);
    const web = await api<{ instances: { unit: string; node: string; id: string; port: number; address: string; health: string; nodePhase: string }[] }>('GET', `${API}/services/web`);
    assert.deepEqual(web.body.instances.map((i) => [i.unit, i.node, i.id, i.port, i.health]), [
      ['site-a', 'node-a1', 'w1', 8080, 'passing'], ['site-a', 'node-a2', 'w2', 8080, 'critical'], ['site-b', 'node-b', 'w1', 8080, 'passing'],
    ]);
    assert.equal(web.body.instances[0]?.nodePhase, 'Ready');
    assert.equal((await api('GET', `${API}/services/nope`)).status, 404);
    assert.equal((await api('GET', `${API}/services/Bad_Name`)).status, 400);
    assert.equal((await api('DELETE', `${API}/services/web`)).status, 405);
    assert.equal((await api('GET', `${API}/services`, undefined, 'wrong-token')).status, 401);

    // A tombstone removes the instance; a late live copy of the older version does not bring it back.
    r = await report(a2, [tombstone('node-a2', 'web/w2', [1, 2]), record('node-a2', 'site-a', 'web', 'w2', [1, 1])]);
    assert.deepEqual(r.rejected, []);
    const after = await api<{ instances: { id: string; unit: string }[] }>('GET', `${API}/services/web?unit=site-a`);
    assert.deepEqual(after.body.instances.map((i) => i.id), ['w1']);
  });

  test('a node may report only records of its own unit', async () => {
    const a1 = await connect('node-a1');
    const before = await api<{ items: unknown[] }>('GET', `${API}/services`);
    const r = await report(a1, [
      record('node-b', 'site-b', 'evil', 'e1', [9, 9]), // origin in another unit
      record('node-a1', 'site-b', 'evil', 'e2', [9, 9]), // own origin, instance claims another unit
      record('node-a2', 'site-a', 'evil', 'e3', [9, 9], { node: 'node-a1' }), // instance node is not the origin
      { ...record('node-a1', 'site-a', 'evil', 'e4', [9, 9]), key: 'evil/other' }, // key does not match
      record('ghost', 'site-a', 'evil', 'e5', [9, 9]), // unknown origin
      tombstone('node-b', 'web/w1', [99, 0]), // deleting another unit's record
      { key: 'evil/e6', origin: 'node-a1', version: { incarnation: 1, counter: 1 }, instance: { service: 'evil' } }, // malformed
    ]);
    // The malformed item is refused by the frame check, the others by authorization, each by seq.
    const codeOf = (i: number) => r.rejected.find((x) => x.seq === r.ackSeq - 6 + i)?.code;
    assert.equal(r.rejected.length, 7);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(codeOf), ['OUTPOST_FORBIDDEN', 'OUTPOST_FORBIDDEN', 'OUTPOST_BAD_REQUEST', 'OUTPOST_BAD_REQUEST', 'OUTPOST_NOT_FOUND', 'OUTPOST_FORBIDDEN', 'OUTPOST_INVALID']);
    assert.ok(r.rejected.find((x) => x.message.includes('node-b'))?.message.includes('not in unit site-a'));
    const afterList = await api<{ items: unknown[] }>('GET', `${API}/services`);
    assert.deepEqual(afterList.body, before.body);
    const webB = await api<{ instances: { id: string }[] }>('GET', `${API}/services/web?unit=site-b`);
    assert.deepEqual(webB.body.instances.map((i) => i.id), ['w1']);
  });

  test('agents resolve other units through the hub and compare digests; the view survives a hub restart', async () => {
    const agentGet = (path: string, node: string | undefined) => fetch(`${hub.url}${path}`, { headers: node ? { Authorization: `Bearer ${cred[node] ?? node}` } : {} });
    const fromB = (await (await agentGet('/agent/v1/services/web', 'node-b')).json()) as { instances: { unit: string; id: string; address: string }[] };
    assert.deepEqual(fromB.instances.map((i) => [i.unit, i.id]), [['site-a', 'w1']]);
    const fromA = (await (await agentGet('/agent/v1/services/web', 'node-a1')).json()) as { instances: { unit: string; address: string }[] };
    assert.deepEqual(fromA.instances.map((i) => [i.unit, i.address]), [['site-b', '10.0.1.1']]);
    assert.equal((await agentGet('/agent/v1/services/web', undefined)).status, 401);
    assert.equal((await agentGet('/agent/v1/services/web', 'x.y')).status, 401);
    assert.equal((await agentGet('/agent/v1/services/NOT..ok', 'node-b')).status, 400);
    // The admin token is not a node credential.
    assert.equal((await fetch(`${hub.url}/agent/v1/services/web`, { headers: { Authorization: `Bearer ${hub.adminToken}` } })).status, 401);

    const digest = (await (await agentGet('/agent/v1/registry/digest', 'node-a2')).json()) as { unit: string; origins: Record<string, unknown> };
    assert.equal(digest.unit, 'site-a');
    assert.deepEqual(digest.origins, originDigests([record('node-a1', 'site-a', 'web', 'w1', [1, 1]), record('node-a1', 'site-a', 'db', 'd1', [1, 2])]));

    const port = Number(new URL(hub.url).port);
    for (const a of agents) a.ws.terminate();
    await hub.stop();
    await start(port);
    const list = await api<{ items: { service: string; total: number }[] }>('GET', `${API}/services`);
    assert.deepEqual(list.body.items.map((s) => [s.service, s.total]), [['db', 1], ['web', 2]]);

    // A node the hub declared Down: other units get its instances as critical.
    const node = (await api<{ metadata: { resourceVersion?: string }; status?: object }>('GET', `${API}/edgenodes/node-a1`)).body;
    const status = await api('PUT', `${API}/edgenodes/node-a1/status`, { ...node, metadata: { ...node.metadata, resourceVersion: undefined }, status: { ...node.status, phase: 'Down', reason: 'test', since: new Date().toISOString() } });
    assert.equal(status.status, 200, JSON.stringify(status.body));
    const downView = await waitFor(async () => {
      const v = (await (await agentGet('/agent/v1/services/web', 'node-b')).json()) as { instances: { id: string; health: string }[] };
      return v.instances[0]?.health === 'critical' ? v : undefined;
    }, { timeoutMs: 5000, message: 'the Down node seen by the hub cache' });
    assert.deepEqual(downView.instances.map((i) => [i.id, i.health]), [['w1', 'critical']]);
  });

  test('outpost get services and describe service show the view', async () => {
    const env = { OUTPOST_SERVER: hub.url, OUTPOST_TOKEN: hub.adminToken };
    const get = await runCli(['get', 'services'], env);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^NAME\s+UNITS\s+HEALTHY\s+INSTANCES$/m);
    assert.match(get.stdout, /^web\s+site-a,site-b\s+2\s+2$/m);
    const json = await runCli(['get', 'svc', '-o', 'json'], env);
    assert.deepEqual((JSON.parse(json.stdout) as { items: { service: string }[] }).items.map((s) => s.service), ['db', 'web']);
    const desc = await runCli(['describe', 'service', 'web'], env);
    assert.equal(desc.code, 0, desc.stderr);
    assert.match(desc.stdout, /Instances:\s+2 healthy \/ 2/);
    assert.match(desc.stdout, /site-b\s+node-b\s+w1\s+10\.0\.1\.1:8080\s+http\s+passing/);
    const missing = await runCli(['describe', 'service', 'nope'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /service "nope" has no instances/);
  });

  test('deleting a node removes its records from the view', async () => {
    assert.equal((await api('DELETE', `${API}/edgenodes/node-b`)).status, 200);
    const deadline = Date.now() + 5000;
    let services: { service: string; units: string[] }[] = [];
    while (Date.now() < deadline) {
      services = (await api<{ items: { service: string; units: string[] }[] }>('GET', `${API}/services`)).body.items;
      if (services.find((s) => s.service === 'web')?.units.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(services.find((s) => s.service === 'web')?.units, ['site-a']);
  });
});
