// The sync protocol's edges: large resyncs split under the frame limit, content-digest resync,
// per-node projection of apps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EdgeApp } from '../../shared/api/index.js';
import { MAX_FRAME_BYTES, type HubFrame, type SyncFrame } from '../../shared/protocol/frames.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { startTestHub, type HubFixture } from '../helpers/in-process-hub.js';
import { connectRaw } from '../helpers/raw-agent.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const isSync = (f: HubFrame): f is SyncFrame => f.type === 'sync';

describe('sync protocol', () => {
  let h: HubFixture;
  let cred: string;
  before(async () => {
    h = await startTestHub();
    await h.api('POST', `${API}/nodeunits`, nodeUnit('site-a'));
    await h.api('POST', `${API}/nodeunits`, nodeUnit('secret-site'));
    const token = (await h.api<{ token: string }>('POST', `${API}/jointokens`, { unit: 'site-a' })).body.token;
    cred = (await h.join(token, 'n1')).credential;
  });
  after(() => h.close());

  test('a desired set larger than one frame arrives in several, with keys and the revision only on the last', async () => {
    const big = Array.from({ length: 14 }, () => 'x'.repeat(64_000)); // args are limited to 64 KiB each
    for (let i = 0; i < 6; i++) {
      const res = await h.api('POST', `${API}/edgeapps`, edgeApp(`big-${i}`, { units: ['site-a'], template: { command: 'sh', args: ['-c', 'true', ...big] } }));
      assert.equal(res.status, 201);
    }
    const a = await connectRaw(h.hub.url, cred);
    a.hello();
    // 6 apps and (once the node is Ready) 6 instances of ~0.9 MB each: far over one frame.
    await waitFor(() => a.frames.filter(isSync).flatMap((f) => f.objects).filter((o) => o.kind === 'Instance').length >= 6, { timeoutMs: 20_000, message: 'all instances' });
    const syncs = a.frames.filter(isSync);
    for (const s of syncs) assert.ok(JSON.stringify(s).length < MAX_FRAME_BYTES, 'every frame under the limit');
    const withKeys = syncs.findIndex((s) => s.keys !== undefined);
    assert.ok(withKeys > 0, 'keys come on the last frame of the resync');
    for (const s of syncs.slice(0, withKeys)) assert.equal(s.revision, 0, 'earlier chunks do not advance the revision');
    a.ws.terminate();
    for (let i = 0; i < 6; i++) await h.api('DELETE', `${API}/edgeapps/big-${i}`);
  });

  test('reconnect resync compares content, not revisions; apps are projected to the node\'s unit', async () => {
    await h.api('POST', `${API}/edgeapps`, edgeApp('web', { units: ['site-a', 'secret-site'] }));
    const a = await connectRaw(h.hub.url, cred);
    a.hello();
    const app = await waitFor(() => a.frames.filter(isSync).flatMap((f) => f.objects).find((o) => o.metadata.name === 'web') as EdgeApp | undefined, { message: 'web synced' });
    assert.deepEqual(app.spec.units.names, ['site-a'], 'other units are not shown');
    assert.ok(!(app.status?.units ?? []).some((u) => u.unit === 'secret-site'));
    a.ws.terminate();

    // An agent whose cached copy has the same name but other content (e.g. the hub was restored
    // from a backup and reused revision numbers) gets the object again.
    const b = await connectRaw(h.hub.url, cred);
    b.hello({ cached: [{ kind: 'EdgeApp', name: 'web', digest: 'stale-digest' }, { kind: 'NodeUnit', name: 'site-a', digest: 'stale' }] });
    const resync = await b.next(isSync);
    assert.ok(resync.objects.some((o) => o.metadata.name === 'web'), 'content differs: sent again');
    b.ws.terminate();
  });

  test('a connection that never says hello (an upgrade its agent gave up on) leaves the live session alone; a hello replaces it', async () => {
    const live = await connectRaw(h.hub.url, cred);
    live.hello();
    await live.next((f): f is HubFrame => f.type === 'welcome');
    const abandoned = await connectRaw(h.hub.url, cred);
    // The live session still gets what is new for its node, and is not closed.
    await h.api('POST', `${API}/edgeapps`, edgeApp('after-abandoned', { units: ['site-a'] }));
    await live.next((f): f is SyncFrame => isSync(f) && f.objects.some((o) => o.metadata.name === 'after-abandoned'));
    assert.equal(live.closed, undefined, 'the live session was not replaced by a connection without hello');
    abandoned.ws.terminate();
    const restarted = await connectRaw(h.hub.url, cred);
    restarted.hello();
    await restarted.next((f): f is HubFrame => f.type === 'welcome');
    const closed = await live.waitClosed();
    assert.match(closed.reason, /replaced/);
    restarted.ws.terminate();
    await h.api('DELETE', `${API}/edgeapps/after-abandoned`);
  });
});
