// The Store contract against a real kube-apiserver + etcd (opt-in: OUTPOST_TEST_KUBE_BIN_DIR, see
// test/helpers/kube-apiserver.ts), plus what only the Kubernetes store has: a running watch that
// loses its connection while etcd compacts the history it would resume from.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { KINDS } from '../../shared/api/index.js';
import { createLogger } from '../../shared/logger.js';
import { isOutpostError } from '../../shared/errors.js';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { loadKubeContext } from '../../cloud-hub/kube/kube-context.js';
import { KubernetesStore, type KubernetesStoreOptions } from '../../cloud-hub/store/kubernetes/kubernetes-store.js';
import { kubeSkipReason, startKubeApiServer, type KubeTestServer } from '../helpers/kube-apiserver.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { pause, waitFor } from '../helpers/wait.js';
import { nodeUnit } from '../helpers/objects.js';
import { runStoreContract, type StoreHarness } from './store.contract.js';

const skip = kubeSkipReason();

/** Quick reconnects, so that tests which cut connections do not wait out production backoff. */
const TEST_TUNING: Pick<KubernetesStoreOptions, 'watch' | 'retry'> = {
  watch: { retryInitialMs: 50, retryMaxMs: 300 },
  retry: { attempts: 3, initialMs: 20, maxMs: 100 },
};

function openStore(server: KubeTestServer, extra: Partial<KubernetesStoreOptions> = {}): Promise<KubernetesStore> {
  return KubernetesStore.open({ kube: loadKubeContext({ kubeconfig: server.kubeconfigPath, namespace: 'outpost-test' }), ...TEST_TUNING, ...extra });
}

/** Deletes every Outpost object, so that each contract test starts from an empty store. */
async function deleteAllObjects(server: KubeTestServer): Promise<void> {
  for (const k of KINDS) {
    const r = await server.request('DELETE', `/apis/outpost.dev/v1alpha1/${k.plural}`);
    assert.equal(r.status, 200, `deletecollection ${k.plural}: ${JSON.stringify(r.body)}`);
  }
  for (const k of KINDS) {
    await waitFor(async () => {
      const r = await server.request('GET', `/apis/outpost.dev/v1alpha1/${k.plural}?limit=1`);
      return r.status === 200 && (r.body as { items: unknown[] }).items.length === 0;
    }, { timeoutMs: 10_000, message: `${k.plural} emptied` });
  }
}

/** Drops etcd's history up to its newest revision, through etcd's v3 HTTP gateway. */
async function compactEtcd(server: KubeTestServer): Promise<number> {
  const head = await fetch(`${server.etcdEndpoint}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64') }) });
  const revision = Number(((await head.json()) as { header: { revision: string } }).header.revision);
  const r = await fetch(`${server.etcdEndpoint}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision, physical: true }) });
  assert.equal(r.status, 200, `etcd compaction: ${await r.text()}`);
  return revision;
}

if (skip) {
  void test('KubernetesStore on a real API server', { skip }, () => undefined);
} else {
  void describe('KubernetesStore on a real API server (watch cache on, as in clusters)', () => {
    let server: KubeTestServer;
    before(async () => {
      server = await startKubeApiServer({ installCrds: true });
    });
    after(async () => {
      await server?.stop();
    });

    runStoreContract('kubernetes', async (): Promise<StoreHarness> => {
      let store = await openStore(server);
      return {
        store,
        reopen: async () => {
          await store.close();
          store = await openStore(server);
          return store;
        },
        compact: async () => {
          await compactEtcd(server);
        },
        cleanup: async () => {
          await store.close();
          await deleteAllObjects(server);
        },
      };
    });

    void test('open refuses with a clear error naming the missing CRD and how to install it', async () => {
      const crd = 'devicecredentials.outpost.dev';
      const saved = await server.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`);
      assert.equal(saved.status, 200);
      const del = await server.request('DELETE', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`);
      assert.equal(del.status, 200);
      try {
        await waitFor(async () => (await server.request('GET', '/apis/outpost.dev/v1alpha1')).body
          && !JSON.stringify((await server.request('GET', '/apis/outpost.dev/v1alpha1')).body).includes('"devicecredentials"'), { timeoutMs: 30_000, message: 'CRD removed from discovery' });
        await assert.rejects(openStore(server), (err: unknown) => {
          assert.ok(isOutpostError(err, 'UNAVAILABLE'), String(err));
          assert.match(err.message, /devicecredentials\.outpost\.dev/);
          assert.match(err.message, /kubectl apply -f deploy\/crds\//);
          return true;
        });
      } finally {
        const body = saved.body as { metadata: Record<string, unknown> };
        const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, ...metadata } = body.metadata;
        await waitFor(async () => (await server.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { ...body, metadata, status: undefined })).status === 201, { timeoutMs: 30_000, message: 'CRD re-created' });
        await waitFor(async () => (await server.request('GET', '/apis/outpost.dev/v1alpha1/devicecredentials?limit=1')).status === 200, { timeoutMs: 30_000, message: 'CRD served again' });
      }
    });
  });

  void describe('KubernetesStore across disconnections and compaction (watch cache off: etcd answers 410)', () => {
    let server: KubeTestServer;
    before(async () => {
      server = await startKubeApiServer({ installCrds: true, watchCache: false });
    });
    after(async () => {
      await server?.stop();
    });

    /** A TCP proxy in front of the API server and a kubeconfig that goes through it. */
    async function proxied() {
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
      const kubeconfig = `${server.kubeconfigPath}.proxy-${proxy.port}`;
      writeFileSync(kubeconfig, readFileSync(server.kubeconfigPath, 'utf8').replace(server.url, `https://127.0.0.1:${proxy.port}`));
      return { proxy, kubeconfig };
    }

    void test('a watch outlives the per-request deadline: one connection per kind, no reconnects', async () => {
      const { proxy, kubeconfig } = await proxied();
      const store = await KubernetesStore.open({ kube: loadKubeContext({ kubeconfig }), ...TEST_TUNING, http: { requestTimeoutMs: 1500 } });
      const writer = await openStore(server);
      const seen: string[] = [];
      try {
        const w = await store.watch({ fromRevision: await store.currentRevision(), kinds: ['NodeUnit', 'EdgeApp'] }, (e) => seen.push(e.object.metadata.name));
        await writer.create(nodeUnit('before-deadline'));
        await waitFor(() => seen.includes('before-deadline'), { timeoutMs: 10_000, message: 'first event' });
        const connections = proxy.connections();
        await pause(3500); // more than two request deadlines
        await writer.create(nodeUnit('after-deadline'));
        await waitFor(() => seen.includes('after-deadline'), { timeoutMs: 10_000, message: 'event after the deadline' });
        assert.equal(proxy.connections(), connections, 'no watch was cut and reopened');
        w.stop();
        await writer.delete('NodeUnit', 'before-deadline');
        await writer.delete('NodeUnit', 'after-deadline');
      } finally {
        await store.close();
        await writer.close();
        await proxy.close();
      }
    });

    void test('while the API server is unreachable, calls fail with UNAVAILABLE after bounded retries; then work again', async () => {
      const { proxy, kubeconfig } = await proxied();
      const store = await KubernetesStore.open({ kube: loadKubeContext({ kubeconfig }), ...TEST_TUNING });
      try {
        proxy.cut();
        await assert.rejects(store.create(nodeUnit('unreachable')), (err: unknown) => {
          assert.ok(isOutpostError(err, 'UNAVAILABLE'), String(err));
          assert.match(err.message, /after 3 tries/);
          return true;
        });
        await assert.rejects(store.get('NodeUnit', 'unreachable'), (err: unknown) => isOutpostError(err, 'UNAVAILABLE'));
        proxy.restore();
        const created = await store.create(nodeUnit('reachable'));
        assert.deepEqual(await store.get('NodeUnit', 'reachable'), created);
        await store.delete('NodeUnit', 'reachable');
        assert.equal(await store.get('NodeUnit', 'unreachable'), undefined, 'the refused create wrote nothing');
      } finally {
        await store.close();
        await proxy.close();
      }
    });

    void test('a running watch that gets 410 re-lists and the hub cache misses no object', async () => {
      const { proxy, kubeconfig: viaProxy } = await proxied();
      const lines: string[] = [];
      const log = createLogger({ name: 'test', level: 'info', destination: new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } }) });
      const watched = await KubernetesStore.open({ kube: loadKubeContext({ kubeconfig: viaProxy }), log, ...TEST_TUNING });
      const writer = await openStore(server);
      const cache = new ObjectCache({ store: watched, log });
      try {
        for (const n of ['keep', 'change', 'gone']) await writer.create(nodeUnit(n));
        await cache.start();
        await writer.create(nodeUnit('live'));
        await waitFor(() => cache.get('NodeUnit', 'live'), { timeoutMs: 10_000, message: 'live event before the cut' });

        proxy.cut();
        await writer.update(nodeUnit('change', { description: 'changed while disconnected' }));
        await writer.delete('NodeUnit', 'gone');
        await writer.create(nodeUnit('new'));
        await writer.create(nodeUnit('brief'));
        await writer.delete('NodeUnit', 'brief');
        const compacted = await compactEtcd(server);
        assert.ok(compacted > cache.revision, 'the history the cache would resume from is gone');
        proxy.restore();

        await waitFor(() => cache.get('NodeUnit', 'new') && !cache.get('NodeUnit', 'gone'), { timeoutMs: 20_000, message: 'the cache caught up after the 410' });
        assert.equal((cache.get('NodeUnit', 'change')?.spec as { description?: string }).description, 'changed while disconnected');
        assert.ok(cache.get('NodeUnit', 'keep'));
        assert.equal(cache.get('NodeUnit', 'brief'), undefined);
        assert.ok(lines.some((l) => l.includes('resynced from a list')), 'the watch really got 410 and re-listed');
        const after = await writer.create(nodeUnit('after'));
        await waitFor(() => cache.get('NodeUnit', 'after'), { timeoutMs: 10_000, message: 'live events after the resync' });
        assert.deepEqual(cache.list('NodeUnit').map((o) => o.metadata.name).sort(), ['after', 'change', 'keep', 'live', 'new']);
        assert.equal(cache.get('NodeUnit', 'after')?.metadata.resourceVersion, after.metadata.resourceVersion);
      } finally {
        await cache.stop();
        await watched.close();
        await writer.close();
        await proxy.close();
      }
    });
  });
}
