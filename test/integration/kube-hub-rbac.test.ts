// Opt-in (OUTPOST_TEST_KUBE_BIN_DIR): a real hub process on the Kubernetes store with nothing but
// the rights of deploy/hub's service account, reached through a kubeconfig as README "A hub
// outside the cluster" describes. If the RBAC misses something the hub uses, a step here fails
// (or the hub logs a 403); the unit test only compares the manifest with hub-rbac.ts.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { API_VERSION } from '../../shared/api/index.js';
import { freePort } from '../../shared/free-port.js';
import { kubeSkipReason, startKubeApiServer } from '../helpers/kube-apiserver.js';
import { waitFor, within } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const NS = 'outpost-system';

test('a hub with only the deploy/hub service account rights runs: objects, leader Lease, status, join tokens, node credentials', { skip: kubeSkipReason(), timeout: 240_000 }, async () => {
  const server = await startKubeApiServer({ installCrds: true });
  const dir = mkdtempSync(join(tmpdir(), 'outpost-hub-sa-'));
  let hub: ChildProcess | undefined;
  let output = '';
  try {
    for (const f of ['00-namespace.yaml', '10-rbac.yaml']) {
      const r = await server.kubectl(['apply', '-f', `${ROOT}deploy/hub/${f}`]);
      assert.equal(r.code, 0, r.stderr);
    }
    // What `kubectl create token outpost-hub` does (this kubectl predates that command).
    const tr = await server.request('POST', `/api/v1/namespaces/${NS}/serviceaccounts/outpost-hub/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
    assert.equal(tr.status, 201, JSON.stringify(tr.body));
    const saToken = (tr.body as { status: { token: string } }).status.token;
    const kubeconfig = join(dir, 'hub.kubeconfig');
    writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config',
      'clusters:', '- name: k8s', '  cluster:', `    server: ${server.url}`, '    insecure-skip-tls-verify: true',
      'users:', '- name: outpost-hub', '  user:', `    token: ${saToken}`,
      'contexts:', '- name: outpost', '  context: {cluster: k8s, user: outpost-hub, namespace: outpost-system}',
      'current-context: outpost', '',
    ].join('\n'), { mode: 0o600 });

    const port = await freePort();
    const hubUrl = `http://127.0.0.1:${port}`;
    const { KUBERNETES_SERVICE_HOST: _inCluster, ...env } = process.env;
    hub = spawn(process.execPath, [`${ROOT}bin/outpost.js`, 'hub', '--store', 'kubernetes', '--kubeconfig', kubeconfig, '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data'), '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => { output = (output + d.toString()).slice(-20_000); };
    hub.stdout!.on('data', keep);
    hub.stderr!.on('data', keep);
    const exited = new Promise<void>((resolve) => hub!.once('exit', () => resolve()));

    await waitFor(async () => {
      if (hub!.exitCode !== null) throw new Error(`hub exited ${hub!.exitCode}:\n${output}`);
      return (await fetch(`${hubUrl}/healthz`).catch(() => undefined))?.ok;
    }, { timeoutMs: 60_000, intervalMs: 250, message: 'hub /healthz' });
    const adminToken = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
    const call = async (method: string, path: string, body: unknown) => {
      const res = await fetch(`${hubUrl}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() as Record<string, unknown> };
    };

    const unit = await call('POST', '/apis/outpost.dev/v1alpha1/nodeunits', { apiVersion: API_VERSION, kind: 'NodeUnit', metadata: { name: 'site-a' }, spec: {} });
    assert.equal(unit.status, 201, JSON.stringify(unit.body));
    const app = await call('POST', '/apis/outpost.dev/v1alpha1/edgeapps', {
      apiVersion: API_VERSION, kind: 'EdgeApp', metadata: { name: 'hello' },
      spec: { units: { names: ['site-a'] }, replicasPerUnit: 2, template: { processes: [{ command: 'sleep', args: ['60'] }] } },
    });
    assert.equal(app.status, 201, JSON.stringify(app.body));
    const token = await call('POST', '/apis/outpost.dev/v1alpha1/jointokens', { unit: 'site-a' });
    assert.equal(token.status, 201, JSON.stringify(token.body));
    const joined = await call('POST', '/agent/v1/join', { token: token.body.token, node: 'edge-a1' });
    assert.equal(joined.status, 201, JSON.stringify(joined.body));

    // The leader's scheduler wrote the app's status through the status subresource.
    await waitFor(async () => (await server.kubectl(['get', 'edgeapp', 'hello', '-o', 'jsonpath={.status.unitsSummary}'])).stdout === 'site-a 0/2', { timeoutMs: 30_000, intervalMs: 250, message: 'EdgeApp status written by the leader' });
    const holder = (await server.kubectl(['-n', NS, 'get', 'leases', '-o', 'jsonpath={.items[*].spec.holderIdentity}'])).stdout.trim();
    assert.ok(holder.length > 0, 'a replica holds the Lease');
    assert.match((await server.kubectl(['get', 'edgenodes', '-o', 'name'])).stdout, /edgenode\.outpost\.dev\/edge-a1/);
    const secrets = (await server.kubectl(['-n', NS, 'get', 'secrets', '-o', 'name'])).stdout;
    assert.match(secrets, /outpost-hub-admin-token/);
    assert.ok(secrets.trim().split('\n').length >= 3, `the admin token, the join token and the node credential are Secrets:\n${secrets}`);

    hub.kill('SIGTERM');
    await within(exited, 30_000, 'hub exit after SIGTERM');
    assert.doesNotMatch(output, /forbidden/i, `the hub was refused something its RBAC should allow:\n${output}`);
  } finally {
    if (hub && hub.exitCode === null && hub.signalCode === null) hub.kill('SIGKILL');
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
