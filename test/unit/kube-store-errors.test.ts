import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOutpostError } from '../../shared/errors.js';
import { loadKubeContext } from '../../cloud-hub/kube/kube-context.js';
import { fieldPathToPointer, kubeError } from '../../cloud-hub/store/kubernetes/kube-errors.js';
import { KubernetesStore } from '../../cloud-hub/store/kubernetes/kubernetes-store.js';
import { labelSelectorString } from '../../cloud-hub/store/kubernetes/object-mapping.js';
import { parseLabelSelector } from '../../shared/labels.js';

/** A real HTTP server on 127.0.0.1:0 standing in for an API server that answers `handler`. */
async function fakeApiServer(handler: (path: string) => { status: number; body: unknown }): Promise<{ server: Server; kubeconfig: string; hits: string[]; done: () => Promise<void> }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    const { status, body } = handler(req.url ?? '');
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'outpost-kube-unit-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:${port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n`);
  return { server, kubeconfig, hits, done: async () => { await new Promise((r) => server.close(r)); rmSync(dir, { recursive: true, force: true }); } };
}

void describe('Kubernetes store: error mapping, retries, refusing to open', () => {
  void test('API server answers map to the store errors', () => {
    const s = (status: number, body: unknown) => kubeError({ status, body }, 'EdgeApp "a"');
    assert.ok(isOutpostError(s(404, {}), 'NOT_FOUND'));
    assert.ok(isOutpostError(s(409, { reason: 'AlreadyExists' }), 'ALREADY_EXISTS'));
    assert.ok(isOutpostError(s(409, { reason: 'Conflict', message: 'the object has been modified' }), 'CONFLICT'));
    assert.ok(isOutpostError(s(410, { reason: 'Expired', message: 'too old resource version: 5 (9)' }), 'REVISION_TOO_OLD'));
    assert.ok(isOutpostError(s(403, {}), 'FORBIDDEN'));
    assert.ok(isOutpostError(s(503, 'etcd down'), 'UNAVAILABLE'));
    const invalid = s(422, { message: 'invalid', details: { causes: [{ field: 'spec.template.processes[0].command', message: 'Required value' }] } });
    assert.ok(isOutpostError(invalid, 'INVALID'));
    assert.deepEqual(invalid.fields, [{ path: '/spec/template/processes/0/command', message: 'Required value' }]);
    assert.equal(fieldPathToPointer('metadata.labels'), '/metadata/labels');
  });

  void test('label selectors keep the hub semantics in Kubernetes syntax', () => {
    assert.equal(labelSelectorString(parseLabelSelector('tier=edge,zone!=eu,gpu,!legacy')), 'tier=edge,zone!=eu,gpu,!legacy');
  });

  void test('open retries 5xx a bounded number of times, then refuses with UNAVAILABLE', async () => {
    const api = await fakeApiServer(() => ({ status: 503, body: { kind: 'Status', message: 'etcd is restarting' } }));
    try {
      const kube = loadKubeContext({ kubeconfig: api.kubeconfig });
      await assert.rejects(KubernetesStore.open({ kube, retry: { attempts: 3, initialMs: 1, maxMs: 5 } }), (err: unknown) => {
        assert.ok(isOutpostError(err, 'UNAVAILABLE'), String(err));
        assert.match(err.message, /after 3 tries.*etcd is restarting/);
        return true;
      });
      assert.equal(api.hits.length, 3);
    } finally {
      await api.done();
    }
  });

  void test('open names the missing CRDs and how to install them', async () => {
    const api = await fakeApiServer((path) => path === '/apis/outpost.dev/v1alpha1'
      ? { status: 200, body: { resources: [{ name: 'nodeunits' }, { name: 'nodeunits/status' }] } }
      : { status: 404, body: {} });
    try {
      await assert.rejects(KubernetesStore.open({ kube: loadKubeContext({ kubeconfig: api.kubeconfig }) }), (err: unknown) => {
        assert.ok(isOutpostError(err, 'UNAVAILABLE'), String(err));
        assert.match(err.message, /edgeapps\.outpost\.dev/);
        assert.doesNotMatch(err.message, /nodeunits\.outpost\.dev/);
        assert.match(err.message, /kubectl apply -f deploy\/crds\//);
        return true;
      });
    } finally {
      await api.done();
    }
  });

  void test('loadKubeContext: a missing file, or no configuration at all, is a clear error; namespace defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-kube-ctx-'));
    try {
      assert.throws(() => loadKubeContext({ kubeconfig: join(dir, 'nope') }), (err: unknown) => isOutpostError(err, 'BAD_REQUEST') && err.message.includes(join(dir, 'nope')));
      assert.throws(() => loadKubeContext({ env: { KUBECONFIG: join(dir, 'absent') } }), /no --kubeconfig given/);
      assert.throws(() => loadKubeContext({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, serviceAccountDir: dir }), /token is missing/);
      const file = join(dir, 'config');
      writeFileSync(file, 'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n');
      assert.equal(loadKubeContext({ kubeconfig: file, serviceAccountDir: dir }).namespace, 'outpost-system');
      writeFileSync(join(dir, 'namespace'), 'edge-hub\n');
      assert.equal(loadKubeContext({ kubeconfig: file, serviceAccountDir: dir }).namespace, 'edge-hub');
      assert.equal(loadKubeContext({ kubeconfig: file, serviceAccountDir: dir, namespace: 'flag' }).namespace, 'flag');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
