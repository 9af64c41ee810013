// The hub's HTTP API beyond CRUD: watch streams, join scoping, token secrecy, metrics.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeNode } from '../../shared/api/index.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { startTestHub, type HubFixture } from '../helpers/in-process-hub.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

/** Reads JSON lines from a watch until `done` says so (bounded). */
async function readWatch(url: string, token: string, done: (names: string[]) => boolean): Promise<{ status: number; events: { type: string; object: { metadata: { name: string; resourceVersion: string } } }[] }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal: controller.signal });
  const events: { type: string; object: { metadata: { name: string; resourceVersion: string } } }[] = [];
  if (res.status !== 200 || !res.body) {
    clearTimeout(timer);
    return { status: res.status, events };
  }
  let buf = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) events.push(JSON.parse(line) as (typeof events)[number]);
      }
      if (done(events.map((e) => `${e.type} ${e.object.metadata.name}`))) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { status: res.status, events };
}

describe('hub API', () => {
  let h: HubFixture;
  before(async () => {
    h = await startTestHub();
    await h.api('POST', `${API}/nodeunits`, nodeUnit('site-a'));
    await h.api('POST', `${API}/nodeunits`, nodeUnit('site-b'));
  });
  after(() => h.close());

  test('watch: without a resourceVersion, current objects then changes; with one, exactly what came after', async () => {
    const list = await h.api<{ metadata: { resourceVersion: string } }>('GET', `${API}/nodeunits`);
    const from = list.body.metadata.resourceVersion;
    const sawC = (names: string[]) => names.includes('ADDED site-c');
    const live = readWatch(`${h.hub.url}${API}/nodeunits?watch=true`, h.hub.adminToken, sawC);
    const resumed = readWatch(`${h.hub.url}${API}/nodeunits?watch=true&resourceVersion=${from}`, h.hub.adminToken, sawC);
    await new Promise((r) => setTimeout(r, 100));
    await h.api('POST', `${API}/nodeunits`, nodeUnit('site-c'));
    const l = await live;
    const added = (evs: typeof l.events) => evs.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.name);
    assert.deepEqual(added(l.events), ['site-a', 'site-b', 'site-c']);
    const r = await resumed;
    assert.deepEqual(added(r.events), ['site-c'], 'only what came after the resourceVersion');
    assert.ok(r.events.every((e) => Number(e.object.metadata.resourceVersion) > Number(from)));
    const revs = r.events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.deepEqual(revs, [...revs].sort((a, b) => a - b), 'in revision order');
    const bad = await h.api<{ code: string }>('GET', `${API}/nodeunits?watch=true&resourceVersion=abc`);
    assert.equal(bad.status, 400);
  });

  test('join: the token decides the unit, whatever labels the agent claims', async () => {
    const token = (await h.api<{ token: string }>('POST', `${API}/jointokens`, { unit: 'site-a' })).body.token;
    const res = await fetch(`${h.hub.url}/agent/v1/join`, { method: 'POST', body: JSON.stringify({ token, node: 'sneaky', labels: { 'outpost.dev/unit': 'site-b', zone: 'x' } }) });
    assert.equal(res.status, 201);
    const node = (await h.api<EdgeNode>('GET', `${API}/edgenodes/sneaky`)).body;
    assert.equal(node.spec.unit, 'site-a');
    assert.equal(node.metadata.labels?.['outpost.dev/unit'], 'site-a');
    assert.equal(node.metadata.labels?.zone, 'x');
  });

  test('token list never shows secrets; the admin token file is private', async () => {
    const created = (await h.api<{ token: string; id: string }>('POST', `${API}/jointokens`, { unit: 'site-b', uses: null, ttl: 'never' })).body;
    const secret = created.token.split('.')[1] ?? '';
    const listed = await h.api('GET', `${API}/jointokens`);
    assert.ok(!JSON.stringify(listed.body).includes(secret));
    assert.ok(JSON.stringify(listed.body).includes(created.id));
    assert.equal(statSync(join(h.dir, 'hub', 'admin-token')).mode & 0o777, 0o600);
    assert.equal((await h.api('DELETE', `${API}/jointokens/${created.id}`)).status, 200);
    const res = await fetch(`${h.hub.url}/agent/v1/join`, { method: 'POST', body: JSON.stringify({ token: created.token, node: 'late' }) });
    assert.equal(res.status, 401, 'a deleted token no longer joins');
  });

  test('watch with a selector: an object that stops matching is DELETED, one that starts is ADDED', async () => {
    await h.api('PUT', `${API}/nodeunits/sel-1`, nodeUnit('sel-1', { labels: { env: 'prod' } }));
    const w = readWatch(`${h.hub.url}${API}/nodeunits?watch=true&labelSelector=env%3Dprod`, h.hub.adminToken, (n) => n.includes('ADDED sel-2'));
    await new Promise((r) => setTimeout(r, 100));
    await h.api('PUT', `${API}/nodeunits/sel-1`, nodeUnit('sel-1', { labels: { env: 'dev' } }));
    await h.api('PUT', `${API}/nodeunits/sel-2`, nodeUnit('sel-2', { labels: { env: 'dev' } }));
    await h.api('PUT', `${API}/nodeunits/sel-2`, nodeUnit('sel-2', { labels: { env: 'prod' } }));
    const events = (await w).events.map((e) => `${e.type} ${e.object.metadata.name}`);
    // (MODIFIED events come from the hub writing unit status; they are allowed while it matches.)
    assert.deepEqual(events.filter((e) => e.includes('sel-') && !e.startsWith('MODIFIED')), ['ADDED sel-1', 'DELETED sel-1', 'ADDED sel-2']);
    assert.ok(!events.slice(events.indexOf('DELETED sel-1')).includes('MODIFIED sel-1'), 'nothing about sel-1 once it left the selector');
    const future = await h.api<{ message: string }>('GET', `${API}/nodeunits?watch=true&resourceVersion=999999`);
    assert.equal(future.status, 400);
    assert.match(future.body.message, /newer than the hub's current revision/);
  });

  test('garbage on the agent endpoint and a second hub on the same data dir are refused; the hub keeps running', async () => {
    const { connect } = await import('node:net');
    const port = Number(new URL(h.hub.url).port);
    const reply = await new Promise<string>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.write('GET //[ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
      let data = '';
      sock.on('data', (d) => { data += d.toString(); });
      sock.on('close', () => resolve(data));
      sock.on('error', () => resolve(data));
      sock.setTimeout(15_000, () => sock.destroy());
    });
    assert.match(reply, /404/);
    assert.equal((await fetch(`${h.hub.url}/healthz`)).status, 200, 'still serving');
    const { startHub } = await import('../../cloud-hub/hub.js');
    const { silentLogger } = await import('../../shared/logger.js');
    await assert.rejects(startHub({ dataDir: join(h.dir, 'hub'), host: '127.0.0.1', port: 0 }, silentLogger()), /another hub \(pid \d+\) is using this data directory/);
  });

  test('metrics and health', async () => {
    await h.api('POST', `${API}/edgeapps`, edgeApp('m', { units: ['site-a'] }));
    const health = await fetch(`${h.hub.url}/healthz`);
    assert.equal(health.status, 200);
    const text = await waitFor(async () => {
      const t = await (await fetch(`${h.hub.url}/metrics`)).text();
      return t.includes('outpost_hub_scheduler_runs_total') ? t : undefined;
    });
    assert.match(text, /outpost_hub_sessions 0/);
    assert.match(text, /outpost_hub_api_requests_total\{method="POST",code="201"\} \d+/);
    assert.match(text, /outpost_hub_process_resident_memory_bytes/);
  });
});
