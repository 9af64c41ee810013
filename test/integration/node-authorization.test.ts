// Node authorization: a node's credential gives it its own desired set only and lets it write
// only its own status. Node A (site-a) tries, with every frame type, to reach site-b's objects.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject, EdgeNode, Instance } from '../../shared/api/index.js';
import type { ReportedFrame, SyncFrame, HubFrame, ErrorFrame } from '../../shared/protocol/frames.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { startTestHub, type HubFixture } from '../helpers/in-process-hub.js';
import { connectRaw, type RawAgent } from '../helpers/raw-agent.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const isSync = (f: HubFrame): f is SyncFrame => f.type === 'sync';
const isReported = (f: HubFrame): f is ReportedFrame => f.type === 'reported';
const isError = (f: HubFrame): f is ErrorFrame => f.type === 'error';

describe('node authorization', () => {
  let h: HubFixture;
  let credA: string;
  let credB: string;
  let b: RawAgent;

  before(async () => {
    h = await startTestHub();
    for (const u of ['site-a', 'site-b']) assert.equal((await h.api('POST', `${API}/nodeunits`, nodeUnit(u))).status, 201);
    const tok = async (unit: string) => (await h.api<{ token: string }>('POST', `${API}/jointokens`, { unit })).body.token;
    credA = (await h.join(await tok('site-a'), 'node-a')).credential;
    credB = (await h.join(await tok('site-b'), 'node-b')).credential;
    b = await connectRaw(h.hub.url, credB);
    b.hello();
    await waitFor(async () => (await h.api<EdgeNode>('GET', `${API}/edgenodes/node-b`)).body.status?.phase === 'Ready', { message: 'node-b Ready' });
    await h.api('POST', `${API}/edgeapps`, edgeApp('b-app', { units: ['site-b'] }));
    await h.api('POST', `${API}/edgeapps`, edgeApp('a-app', { units: ['site-a'] }));
    await waitFor(async () => (await h.api<Instance>('GET', `${API}/instances/b-app-site-b-0`)).body.spec?.node === 'node-b', { message: 'b-app placed' });
  });

  after(async () => {
    b.ws.terminate();
    await h.close();
  });

  test('node A sees only its own unit, apps and instances', async () => {
    const a = await connectRaw(h.hub.url, credA);
    a.hello();
    const first = await a.next(isSync);
    await waitFor(async () => (await h.api<Instance>('GET', `${API}/instances/a-app-site-a-0`)).body.spec?.node === 'node-a', { message: 'a-app placed on node-a' });
    await waitFor(() => a.frames.some((f) => f.type === 'sync' && f.objects.some((o) => o.metadata.name === 'a-app-site-a-0')), { message: 'a-app instance synced to A' });
    const seen: AnyObject[] = a.frames.filter(isSync).flatMap((f) => f.objects);
    const keys = first.keys?.map((k) => `${k.kind}/${k.name}`) ?? [];
    assert.ok(seen.some((o) => o.kind === 'NodeUnit' && o.metadata.name === 'site-a'));
    for (const o of seen) {
      assert.notEqual(o.metadata.name, 'site-b', 'never site-b');
      assert.ok(!o.metadata.name.startsWith('b-app'), `never site-b's app or instances, got ${o.kind}/${o.metadata.name}`);
      assert.notEqual(o.kind, 'EdgeNode');
    }
    assert.ok(!keys.some((k) => k.includes('b-app') || k.endsWith('/site-b')));
    // Claiming to cache B's objects does not make the hub send or keep them.
    a.ws.terminate();
    const a2 = await connectRaw(h.hub.url, credA);
    a2.hello({ cached: [{ kind: 'Instance', name: 'b-app-site-b-0', digest: 'x' }, { kind: 'NodeUnit', name: 'site-b', digest: 'y' }] });
    const resync = await a2.next(isSync);
    assert.deepEqual(resync.deletes.map((d) => d.name).sort(), ['b-app-site-b-0', 'site-b'], 'told to drop what is not its own');
    assert.ok(!resync.objects.some((o) => o.metadata.name.startsWith('b-app')));
    a2.ws.terminate();
  });

  test('node A cannot write node B\'s status, instances or events', async () => {
    const a = await connectRaw(h.hub.url, credA);
    a.hello();
    await a.next(isSync);
    const before = (await h.api<Instance>('GET', `${API}/instances/b-app-site-b-0`)).body;
    const nodeBBefore = (await h.api<EdgeNode>('GET', `${API}/edgenodes/node-b`)).body;
    a.send({
      type: 'report',
      items: [
        { seq: 1, kind: 'instance-status', body: { name: 'b-app-site-b-0', status: { phase: 'Failed', ready: false, restarts: 99 } } },
        { seq: 2, kind: 'node-status', body: { node: 'node-b', outboxDepth: 12345 } },
        { seq: 3, kind: 'event', body: { type: 'Warning', reason: 'Forged', message: 'x', object: { kind: 'Instance', name: 'b-app-site-b-0' }, time: new Date().toISOString() } },
        { seq: 4, kind: 'event', body: { type: 'Warning', reason: 'Forged', message: 'x', object: { kind: 'EdgeNode', name: 'node-b' }, time: new Date().toISOString() } },
      ],
    });
    const reported = await a.next(isReported);
    assert.equal(reported.ackSeq, 4);
    assert.deepEqual(reported.rejected.map((r) => [r.seq, r.code]), [[1, 'OUTPOST_FORBIDDEN'], [2, 'OUTPOST_FORBIDDEN'], [3, 'OUTPOST_FORBIDDEN'], [4, 'OUTPOST_FORBIDDEN']]);
    const after = (await h.api<Instance>('GET', `${API}/instances/b-app-site-b-0`)).body;
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'B\'s instance untouched');
    const nodeBAfter = (await h.api<EdgeNode>('GET', `${API}/edgenodes/node-b`)).body;
    assert.equal(nodeBAfter.status?.outboxDepth, nodeBBefore.status?.outboxDepth);
    const events = (await h.api<{ items: { reason: string }[] }>('GET', `${API}/events`)).body.items;
    assert.ok(!events.some((e) => e.reason === 'Forged'));
    // Its own instance it may write.
    a.send({ type: 'report', items: [{ seq: 5, kind: 'instance-status', body: { name: 'a-app-site-a-0', status: { phase: 'Running', ready: true, restarts: 0, pid: 4242 } } }] });
    const ok = await a.next((f): f is ReportedFrame => isReported(f) && f.ackSeq === 5);
    assert.deepEqual(ok.rejected, []);
    assert.equal((await h.api<Instance>('GET', `${API}/instances/a-app-site-a-0`)).body.status?.pid, 4242);
    // A huge ack only moves A's own cursor, capped at what A was sent.
    a.send({ type: 'ack', revision: 10 ** 12 });
    a.ws.terminate();
  });

  test('the admin API refuses node credentials and join tokens', async () => {
    const res = await h.api('GET', `${API}/edgenodes`, undefined, { token: credA });
    assert.equal(res.status, 401);
  });

  test('a garbage frame closes that session only; the hub keeps serving node B', async () => {
    for (const garbage of ['not json', '{"type":"hello"}', JSON.stringify({ type: 'report', items: [{ seq: 'one', kind: 'node-status', body: {} }] }), JSON.stringify({ type: 'delete-everything' }), JSON.stringify({ type: '€'.repeat(40) })]) {
      const a = await connectRaw(h.hub.url, credA);
      if (!garbage.includes('hello')) a.hello();
      a.send(garbage);
      const closed = await a.waitClosed();
      assert.equal(closed.code, 4400, `closed with protocol error for ${garbage}`);
      const err = a.frames.find(isError);
      assert.equal(err?.code, 'OUTPOST_PROTOCOL');
    }
    // One invalid item in a valid report is refused on its own; the session and the rest go on.
    const a = await connectRaw(h.hub.url, credA);
    a.hello();
    a.send({ type: 'report', items: [{ seq: 7, kind: 'node-status', body: { outboxDepth: 'lots' } }, { seq: 8, kind: 'node-status', body: { outboxDepth: 3 } }] });
    const reported = await a.next(isReported);
    assert.equal(reported.ackSeq, 8);
    assert.deepEqual(reported.rejected.map((r) => [r.seq, r.code]), [[7, 'OUTPOST_INVALID']]);
    assert.equal((await h.api<EdgeNode>('GET', `${API}/edgenodes/node-a`)).body.status?.outboxDepth, 3, 'stored before the ack');
    assert.equal(a.closed, undefined);
    a.ws.terminate();
    assert.equal(b.closed, undefined, 'node B still connected');
    const n = b.frames.length;
    await h.api('PUT', `${API}/edgeapps/b-app`, edgeApp('b-app', { units: ['site-b'], template: { command: 'sleep', args: ['99'] } }));
    await waitFor(() => b.frames.slice(n).some((f) => f.type === 'sync' && f.objects.some((o) => o.metadata.name === 'b-app-site-b-0')), { message: 'B still gets changes' });
  });

  test('a wrong credential is refused before the WebSocket opens', async () => {
    await assert.rejects(connectRaw(h.hub.url, `${credA.slice(0, -4)}AAAA`), /401/);
    await assert.rejects(connectRaw(h.hub.url, 'garbage'), /401/);
  });
});
