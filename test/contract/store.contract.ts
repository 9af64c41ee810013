// The Store contract: one suite, run against every implementation (test/contract/*-store.test.ts).
// It only uses the Store interface, makes no assumption about where revisions start, and waits for
// events with a bounded timeout so that asynchronous implementations pass too.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject } from '../../shared/api/index.js';
import { isOutpostError, type ErrorName } from '../../shared/errors.js';
import type { Store, WatchEvent, WatchOptions } from '../../cloud-hub/store/store.js';
import { edgeApp, instance, nodeUnit } from '../helpers/objects.js';

/** What a contract run needs from an implementation; the harness owns the store it returns. */
export interface StoreHarness {
  store: Store;
  /** Closes `store` and opens the same data again (persistent implementations only). */
  reopen?: () => Promise<Store>;
  /** Drops history so that revisions before the latest writes can no longer be resumed. */
  compact?: () => Promise<void>;
  /** Closes the current store and removes its data. */
  cleanup: () => Promise<void>;
}

const EVENT_TIMEOUT_MS = 2000;

type Step = [type: WatchEvent['type'], name: string, revision: number];

/** A watch that records events, with a bounded wait for the n-th one. */
async function record(store: Store, options: Omit<WatchOptions, 'signal'> & { signal?: AbortSignal }) {
  const events: WatchEvent[] = [];
  let wake: (() => void) | undefined;
  const handle = await store.watch(options, (e) => {
    events.push(e);
    wake?.();
  });
  return {
    events,
    stop: () => handle.stop(),
    steps: (): Step[] => events.map((e) => [e.type, e.object.metadata.name, e.revision]),
    async waitFor(count: number): Promise<void> {
      const deadline = Date.now() + EVENT_TIMEOUT_MS;
      while (events.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`timed out waiting for ${count} watch events, got ${events.length}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 50));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    },
  };
}

function rv(obj: AnyObject): number {
  const n = Number(obj.metadata.resourceVersion);
  assert.ok(Number.isSafeInteger(n) && n > 0, `resourceVersion ${obj.metadata.resourceVersion} is a positive integer`);
  return n;
}

async function rejectsWith(promise: Promise<unknown>, name: ErrorName, check?: (err: { message: string; fields?: { path: string }[] | undefined }) => void) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isOutpostError(err, name), `expected ${name}, got ${String(err)}`);
    check?.(err);
    return true;
  });
}

export function runStoreContract(name: string, makeStore: () => Promise<StoreHarness>): void {
  /** Runs `fn` against a fresh store, always cleaning up. */
  function withStore(fn: (h: StoreHarness) => Promise<void>): () => Promise<void> {
    return async () => {
      const h = await makeStore();
      try {
        await fn(h);
      } finally {
        await h.cleanup();
      }
    };
  }

  void describe(`Store contract: ${name}`, () => {
    void test('create sets server fields; resourceVersion is the revision of the write', withStore(async ({ store }) => {
      const before = await store.currentRevision();
      const created = await store.create({ ...nodeUnit('site-a', { labels: { tier: 'edge' } }), status: { nodes: { total: 0, ready: 0, disconnected: 0 } } });
      assert.equal(created.metadata.generation, 1);
      assert.match(created.metadata.uid ?? '', /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(created.metadata.creationTimestamp ?? '')), 'creationTimestamp is a date');
      assert.ok(rv(created) > before);
      assert.equal(rv(created), await store.currentRevision());
      assert.deepEqual(created.metadata.labels, { tier: 'edge' });
      assert.deepEqual(await store.get('NodeUnit', 'site-a'), created);
      const other = await store.create(nodeUnit('site-b'));
      assert.notEqual(other.metadata.uid, created.metadata.uid);
    }));

    void test('revisions only increase across creates, updates, status updates and deletes', withStore(async ({ store }) => {
      const seen: number[] = [await store.currentRevision()];
      const check = async (obj: AnyObject) => {
        const r = rv(obj);
        assert.ok(r > seen[seen.length - 1]!, `revision ${r} after ${seen.join(',')}`);
        assert.equal(await store.currentRevision(), r);
        seen.push(r);
      };
      await check(await store.create(nodeUnit('site-a')));
      await check(await store.create(edgeApp('app-a')));
      await check(await store.update(edgeApp('app-a', { replicasPerUnit: 2 })));
      await check(await store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 2 }));
      await check(await store.delete('EdgeApp', 'app-a'));
      await check(await store.create(edgeApp('app-a')));
      await check(await store.delete('NodeUnit', 'site-a'));
      assert.equal(await store.get('NodeUnit', 'site-a'), undefined);
    }));

    void test('generation bumps only when spec changes', withStore(async ({ store }) => {
      const created = await store.create(edgeApp('app-a'));
      const relabelled = await store.update(edgeApp('app-a', { labels: { team: 'video' } }));
      assert.equal(relabelled.metadata.generation, 1, 'labels change: same generation');
      assert.ok(rv(relabelled) > rv(created), 'labels change: new revision');
      const status = await store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 1 });
      assert.equal(status.metadata.generation, 1, 'status change: same generation');
      const respec = await store.update(edgeApp('app-a', { labels: { team: 'video' }, replicasPerUnit: 3 }));
      assert.equal(respec.metadata.generation, 2);
      assert.equal((await store.get('EdgeApp', 'app-a'))?.metadata.generation, 2);
    }));

    void test('update keeps uid, creationTimestamp and status; status in the body is ignored', withStore(async ({ store }) => {
      const created = await store.create(edgeApp('app-a'));
      await store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 1, templateHash: 'abc' });
      const updated = await store.update({ ...edgeApp('app-a', { replicasPerUnit: 2 }), status: { observedGeneration: 99 } });
      assert.equal(updated.metadata.uid, created.metadata.uid);
      assert.equal(updated.metadata.creationTimestamp, created.metadata.creationTimestamp);
      assert.deepEqual(updated.status, { observedGeneration: 1, templateHash: 'abc' });
      assert.deepEqual(updated.spec, edgeApp('app-a', { replicasPerUnit: 2 }).spec);
      assert.deepEqual(await store.get('EdgeApp', 'app-a'), updated);
    }));

    void test('an update or status update that changes nothing writes no revision and no event', withStore(async ({ store }) => {
      const created = await store.create(edgeApp('app-a', { labels: { a: '1' } }));
      const withStatus = await store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 1 });
      const rev = await store.currentRevision();
      const w = await record(store, { fromRevision: rev });
      // Re-applying the same YAML, and re-applying what `get` returned (server fields included).
      const same = await store.update(edgeApp('app-a', { labels: { a: '1' } }));
      const roundTrip = await store.update((await store.get('EdgeApp', 'app-a'))!);
      const sameStatus = await store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 1 });
      for (const obj of [same, roundTrip, sameStatus]) assert.deepEqual(obj, withStatus);
      assert.equal(await store.currentRevision(), rev);
      assert.equal(created.metadata.uid, withStatus.metadata.uid);
      // The next real write is the first event after `rev`: nothing was written in between.
      const next = await store.create(nodeUnit('site-a'));
      await w.waitFor(1);
      w.stop();
      assert.deepEqual(w.steps(), [['ADDED', 'site-a', rv(next)]]);
      assert.equal(rv(next) > rev, true);
    }));

    void test('a stale resourceVersion is refused with CONFLICT and changes nothing', withStore(async ({ store }) => {
      const v1 = await store.create(edgeApp('app-a'));
      const v2 = await store.update(edgeApp('app-a', { replicasPerUnit: 2 }));
      const stale = v1.metadata.resourceVersion!;
      const rev = await store.currentRevision();
      await rejectsWith(store.update(edgeApp('app-a', { replicasPerUnit: 3 }), { resourceVersion: stale }), 'CONFLICT');
      const body = edgeApp('app-a', { replicasPerUnit: 3 });
      body.metadata.resourceVersion = stale;
      await rejectsWith(store.update(body), 'CONFLICT');
      await rejectsWith(store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 2 }, { resourceVersion: stale }), 'CONFLICT');
      await rejectsWith(store.delete('EdgeApp', 'app-a', { resourceVersion: stale }), 'CONFLICT');
      assert.equal(await store.currentRevision(), rev);
      assert.deepEqual(await store.get('EdgeApp', 'app-a'), v2);

      // The current resourceVersion passes, as an option or in the body.
      body.metadata.resourceVersion = v2.metadata.resourceVersion!;
      const v3 = await store.update(body);
      const v4 = await store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 2 }, { resourceVersion: v3.metadata.resourceVersion! });
      const v5 = await store.update(edgeApp('app-a', { replicasPerUnit: 4 }), { resourceVersion: v4.metadata.resourceVersion! });
      await store.delete('EdgeApp', 'app-a', { resourceVersion: v5.metadata.resourceVersion! });
      assert.equal(await store.get('EdgeApp', 'app-a'), undefined);
    }));

    void test('create twice is ALREADY_EXISTS; missing objects are undefined or NOT_FOUND', withStore(async ({ store }) => {
      const first = await store.create(nodeUnit('site-a'));
      const rev = await store.currentRevision();
      await rejectsWith(store.create(nodeUnit('site-a', { description: 'other' })), 'ALREADY_EXISTS');
      assert.deepEqual(await store.get('NodeUnit', 'site-a'), first);
      // Same name, other kind: a different object.
      await store.create(edgeApp('site-a'));
      assert.equal(await store.get('NodeUnit', 'nowhere'), undefined);
      assert.equal(await store.get('EdgeApp', 'nowhere'), undefined);
      const afterApp = await store.currentRevision();
      assert.ok(afterApp > rev);
      await rejectsWith(store.delete('NodeUnit', 'nowhere'), 'NOT_FOUND');
      await rejectsWith(store.update(nodeUnit('nowhere')), 'NOT_FOUND');
      await rejectsWith(store.updateStatus('NodeUnit', 'nowhere', {}), 'NOT_FOUND');
      assert.equal(await store.currentRevision(), afterApp);
    }));

    void test('invalid objects are refused with INVALID naming the field, and nothing is written', withStore(async ({ store }) => {
      await store.create(edgeApp('app-a'));
      const rev = await store.currentRevision();
      const paths = (expected: string) => (err: { fields?: { path: string }[] | undefined }) =>
        assert.ok(err.fields?.some((f) => f.path === expected), `fields ${JSON.stringify(err.fields)} name ${expected}`);

      await rejectsWith(store.create(edgeApp('app-b', { replicasPerUnit: -1 })), 'INVALID', paths('/spec/replicasPerUnit'));
      await rejectsWith(store.create(nodeUnit('Bad_Name')), 'INVALID', paths('/metadata/name'));
      await rejectsWith(store.update(edgeApp('app-a', { template: { command: '' } })), 'INVALID', paths('/spec/template/processes/0/command'));
      await rejectsWith(store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 'one' }), 'INVALID', paths('/status/observedGeneration'));
      await rejectsWith(store.updateStatus('EdgeApp', 'app-a', { bogus: true }), 'INVALID');
      assert.equal(await store.currentRevision(), rev);
      assert.equal(await store.get('EdgeApp', 'app-b'), undefined);
      assert.equal((await store.get('EdgeApp', 'app-a'))?.status, undefined);
    }));

    void test('list filters by label selector and field selector, sorted by name, with its revision', withStore(async ({ store }) => {
      await store.create(nodeUnit('site-c', { labels: { tier: 'edge', zone: 'eu' } }));
      await store.create(nodeUnit('site-a', { labels: { tier: 'edge' } }));
      await store.create(nodeUnit('site-b', { labels: { tier: 'core' } }));
      await store.create(instance('app-a-0', { node: 'n1' }));
      await store.create(instance('app-a-1', { node: 'n2', index: 1 }));
      await store.create(instance('app-a-2', { index: 2 }));
      const rev = await store.currentRevision();
      const names = (r: { items: AnyObject[] }) => r.items.map((o) => o.metadata.name);

      const all = await store.list('NodeUnit');
      assert.deepEqual(names(all), ['site-a', 'site-b', 'site-c']);
      assert.equal(all.revision, rev);
      assert.deepEqual(names(await store.list('NodeUnit', { labelSelector: [{ key: 'tier', op: 'eq', value: 'edge' }] })), ['site-a', 'site-c']);
      assert.deepEqual(names(await store.list('NodeUnit', { labelSelector: [{ key: 'tier', op: 'eq', value: 'edge' }, { key: 'zone', op: 'notexists' }] })), ['site-a']);
      assert.deepEqual(names(await store.list('NodeUnit', { labelSelector: [{ key: 'tier', op: 'neq', value: 'edge' }] })), ['site-b']);
      assert.deepEqual(names(await store.list('NodeUnit', { fieldSelector: { 'metadata.name': 'site-b' } })), ['site-b']);
      assert.deepEqual(names(await store.list('Instance', { fieldSelector: { 'spec.node': 'n2' } })), ['app-a-1']);
      assert.deepEqual(names(await store.list('Instance', { fieldSelector: { 'spec.node': 'n1', 'spec.index': '0' } })), ['app-a-0']);
      assert.deepEqual(names(await store.list('Instance', { fieldSelector: { 'spec.node': 'n1', 'spec.index': '1' } })), []);
      assert.deepEqual(names(await store.list('Instance', { fieldSelector: { 'spec.node': '' } })), ['app-a-2']);
      assert.deepEqual(names(await store.list('EdgeApp')), []);
    }));

    void test('watch from a revision delivers exactly the later events, in order, then live ones', withStore(async ({ store }) => {
      const a = await store.create(nodeUnit('site-a'));
      const b = await store.create(nodeUnit('site-b'));
      const c = await store.create(edgeApp('app-c'));
      const w = await record(store, { fromRevision: rv(a) });
      const a2 = await store.update(nodeUnit('site-a', { description: 'changed' }));
      const c2 = await store.updateStatus('EdgeApp', 'app-c', { observedGeneration: 1 });
      const b2 = await store.delete('NodeUnit', 'site-b');
      const a3 = await store.create(edgeApp('app-a'));
      await w.waitFor(6);
      w.stop();
      assert.deepEqual(w.steps(), [
        ['ADDED', 'site-b', rv(b)],
        ['ADDED', 'app-c', rv(c)],
        ['MODIFIED', 'site-a', rv(a2)],
        ['MODIFIED', 'app-c', rv(c2)],
        ['DELETED', 'site-b', rv(b2)],
        ['ADDED', 'app-a', rv(a3)],
      ]);
      for (const e of w.events) assert.equal(rv(e.object), e.revision, 'event revision is its object resourceVersion');
      assert.deepEqual(w.events[3]?.object.status, { observedGeneration: 1 });
      assert.equal(w.events[2]?.object.metadata.generation, 2);
    }));

    void test('watch with kinds delivers only those kinds', withStore(async ({ store }) => {
      const start = await store.currentRevision();
      await store.create(nodeUnit('site-a'));
      const app = await store.create(edgeApp('app-a'));
      const w = await record(store, { fromRevision: start, kinds: ['EdgeApp', 'Instance'] });
      await store.create(nodeUnit('site-b'));
      const inst = await store.create(instance('app-a-0'));
      const del = await store.delete('EdgeApp', 'app-a');
      await w.waitFor(3);
      w.stop();
      assert.deepEqual(w.steps(), [['ADDED', 'app-a', rv(app)], ['ADDED', 'app-a-0', rv(inst)], ['DELETED', 'app-a', rv(del)]]);
    }));

    void test('watch from a future revision waits for it', withStore(async ({ store }) => {
      const now = await store.currentRevision();
      const w = await record(store, { fromRevision: now + 1 });
      await store.create(nodeUnit('site-a'));
      const b = await store.create(nodeUnit('site-b'));
      await w.waitFor(1);
      w.stop();
      assert.deepEqual(w.steps(), [['ADDED', 'site-b', rv(b)]]);
    }));

    void test('stop() and an aborted signal end delivery; other watchers keep going', withStore(async ({ store }) => {
      const from = await store.currentRevision();
      const stopped = await record(store, { fromRevision: from });
      const ac = new AbortController();
      const aborted = await record(store, { fromRevision: from, signal: ac.signal });
      const keeps = await record(store, { fromRevision: from });
      await store.create(nodeUnit('site-a'));
      await Promise.all([stopped.waitFor(1), aborted.waitFor(1)]);
      stopped.stop();
      ac.abort();
      await store.create(nodeUnit('site-b'));
      await store.create(nodeUnit('site-c'));
      await keeps.waitFor(3);
      keeps.stop();
      assert.equal(stopped.events.length, 1);
      assert.equal(aborted.events.length, 1);
      const pre = new AbortController();
      pre.abort();
      const never = await record(store, { fromRevision: from, signal: pre.signal });
      await store.create(nodeUnit('site-d'));
      const last = await record(store, { fromRevision: from });
      await last.waitFor(4);
      last.stop();
      assert.equal(never.events.length, 0, 'a watch with an already aborted signal delivers nothing');
    }));

    void test('a throwing subscriber breaks neither the write nor other subscribers', withStore(async ({ store }) => {
      const from = await store.currentRevision();
      await store.watch({ fromRevision: from }, () => {
        throw new Error('subscriber bug');
      });
      const w = await record(store, { fromRevision: from });
      const a = await store.create(nodeUnit('site-a'));
      const b = await store.create(nodeUnit('site-b'));
      await w.waitFor(2);
      w.stop();
      assert.deepEqual(w.steps(), [['ADDED', 'site-a', rv(a)], ['ADDED', 'site-b', rv(b)]]);
      assert.deepEqual(await store.get('NodeUnit', 'site-b'), b);
    }));

    void test('a subscriber that writes from its callback does not reorder events for others', withStore(async ({ store }) => {
      const from = await store.currentRevision();
      const writes: Promise<AnyObject>[] = [];
      const writer = await store.watch({ fromRevision: from, kinds: ['NodeUnit'] }, (e) => {
        if (e.type === 'ADDED') writes.push(store.create(edgeApp(`app-${e.object.metadata.name}`)));
      });
      const w = await record(store, { fromRevision: from });
      await store.create(nodeUnit('site-a'));
      await store.create(nodeUnit('site-b'));
      await Promise.all(writes);
      await w.waitFor(4);
      writer.stop();
      w.stop();
      const revisions = w.events.map((e) => e.revision);
      assert.deepEqual(revisions, [...revisions].sort((x, y) => x - y), `in order: ${revisions.join(',')}`);
      assert.equal(new Set(revisions).size, 4, 'no duplicates');
      assert.deepEqual(w.steps().map(([, n]) => n).sort(), ['app-site-a', 'app-site-b', 'site-a', 'site-b']);
    }));

    void test('a watch started from inside a subscriber callback sees every event once', withStore(async ({ store }) => {
      const from = await store.currentRevision();
      let inner: Awaited<ReturnType<typeof record>> | undefined;
      let started: Promise<void> | undefined;
      const outer = await store.watch({ fromRevision: from }, () => {
        started ??= record(store, { fromRevision: from }).then((r) => {
          inner = r;
        });
      });
      const a = await store.create(nodeUnit('site-a'));
      // An asynchronous store delivers the event after create() resolves: wait (bounded) for it.
      for (const deadline = Date.now() + EVENT_TIMEOUT_MS; !started && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10));
      await started;
      const b = await store.create(nodeUnit('site-b'));
      await inner!.waitFor(2);
      await store.create(nodeUnit('site-c'));
      await inner!.waitFor(3);
      outer.stop();
      inner!.stop();
      assert.deepEqual(inner!.steps().slice(0, 2), [['ADDED', 'site-a', rv(a)], ['ADDED', 'site-b', rv(b)]]);
      assert.equal(inner!.events.length, 3);
    }));

    void test('watch from a compacted revision fails with REVISION_TOO_OLD', withStore(async (h) => {
      if (!h.compact) return;
      const { store } = h;
      const start = await store.currentRevision();
      for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) await store.create(nodeUnit(`site-${n}`));
      await h.compact();
      await rejectsWith(store.watch({ fromRevision: start }, () => undefined), 'REVISION_TOO_OLD', (err) => assert.match(err.message, /\d+/));
      // The newest revision is always resumable.
      const w = await record(store, { fromRevision: await store.currentRevision() });
      const g = await store.create(nodeUnit('site-g'));
      await w.waitFor(1);
      w.stop();
      assert.deepEqual(w.steps(), [['ADDED', 'site-g', rv(g)]]);
    }));

    void test('data and the revision counter survive reopening; revisions are never reused', withStore(async (h) => {
      if (!h.reopen) return;
      const a = await h.store.create(edgeApp('app-a', { labels: { x: 'y' } }));
      await h.store.updateStatus('EdgeApp', 'app-a', { observedGeneration: 1 });
      const b = await h.store.create(nodeUnit('site-b'));
      const deleted = await h.store.delete('NodeUnit', 'site-b');
      const last = await h.store.currentRevision();
      assert.equal(last, rv(deleted));

      const store = await h.reopen();
      assert.equal(await store.currentRevision(), last);
      const got = await store.get('EdgeApp', 'app-a');
      assert.equal(got?.metadata.uid, a.metadata.uid);
      assert.deepEqual(got?.status, { observedGeneration: 1 });
      assert.equal(await store.get('NodeUnit', 'site-b'), undefined);

      // History survives too: a watcher resumes across the restart.
      const w = await record(store, { fromRevision: rv(b) - 1 });
      const again = await store.create(nodeUnit('site-b'));
      assert.ok(rv(again) > last, `revision ${rv(again)} is new (last before reopen ${last})`);
      assert.notEqual(again.metadata.uid, b.metadata.uid);
      await w.waitFor(3);
      w.stop();
      assert.deepEqual(w.steps(), [['ADDED', 'site-b', rv(b)], ['DELETED', 'site-b', rv(deleted)], ['ADDED', 'site-b', rv(again)]]);
    }));
  });
}
