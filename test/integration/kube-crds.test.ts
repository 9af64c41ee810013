// Opt-in (OUTPOST_TEST_KUBE_BIN_DIR): the generated CRDs and deploy/hub against a real
// kube-apiserver. The API server, not the hub, must accept every valid object and refuse invalid
// ones, since kubectl writes to it directly in Kubernetes mode.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { test, type TestContext } from 'node:test';
import { KINDS, kindInfo, type AnyObject, type KindName } from '../../shared/api/index.js';
import { exampleOfEveryKind } from '../helpers/kind-examples.js';
import { kubeSkipReason, startKubeApiServer, type KubeTestServer } from '../helpers/kube-apiserver.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const HUB_SA = 'system:serviceaccount:outpost-system:outpost-hub';

/** Status as the hub writes it, for the kinds whose examples carry none. */
const STATUS: Partial<Record<KindName, unknown>> = {
  NodeUnit: { nodes: { total: 2, ready: 1, disconnected: 1, down: 0 }, conditions: [{ type: 'Ready', status: 'True', reason: 'NodeReady', message: 'edge-a1 is Ready', lastTransitionTime: '2026-12-07T05:00:00.000Z' }] },
  EdgeApp: {
    observedGeneration: 1, revision: 1, templateHash: 'abc', observedConfigRevision: 0, ready: '1/2', unitsSummary: 'site-a 1/1, site-b 0/1',
    units: [
      { unit: 'site-a', desired: 1, scheduled: 1, ready: 1, updated: 1, available: 1, revision: 1, updateRevision: 1, rollout: 'Complete', targetHash: 'abc' },
      { unit: 'site-b', desired: 1, scheduled: 0, ready: 0, updated: 0, rollout: 'Waiting', message: 'no Ready node' },
    ],
  },
  Instance: { phase: 'Running', ready: true, restarts: 0, node: 'edge-a1', pid: 4242, exitCode: null, signal: null, startedAt: '2026-12-07T05:00:00.000Z' },
};

interface Answer { status: number; body: { message?: string; reason?: string; details?: { causes?: { field?: string; message?: string }[] } } & Record<string, unknown> }

/** One request to the API server as admin, to see the HTTP status itself; PATCH as a JSON merge patch (server.request() sends only application/json). */
function api(server: KubeTestServer, method: string, path: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(new URL(path, server.url), {
      method, rejectUnauthorized: false, timeout: 15_000,
      headers: { authorization: `Bearer ${server.token}`, accept: 'application/json', ...(payload ? { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } : {}) },
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data ? JSON.parse(data) as Answer['body'] : {} }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const path = (kind: KindName, name?: string, sub?: string) => `/apis/outpost.dev/v1alpha1/${kindInfo(kind).plural}${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;

async function kubectlOk(server: KubeTestServer, args: string[], stdin?: string): Promise<string> {
  const r = await server.kubectl(args, stdin);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Creates `obj` through the API server and expects 422 naming `field`. */
async function refused(server: KubeTestServer, obj: AnyObject, field: string): Promise<void> {
  const r = await api(server, 'POST', path(obj.kind as KindName), obj);
  assert.equal(r.status, 422, `${obj.kind} ${obj.metadata.name}: expected 422, got ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`);
  const fields = (r.body.details?.causes ?? []).map((c) => c.field);
  assert.ok(fields.includes(field), `${obj.kind} ${obj.metadata.name}: expected the field ${field} among ${JSON.stringify(fields)}: ${r.body.message}`);
}

function exampleOf(kind: KindName): AnyObject {
  return structuredClone(exampleOfEveryKind().find((o) => o.kind === kind)!);
}

test('generated CRDs and deploy/hub on a real API server', { skip: kubeSkipReason(), timeout: 300_000 }, async (t: TestContext) => {
  const server = await startKubeApiServer();
  try {
    await t.test('kubectl apply -f deploy/crds/: every CRD is accepted, structural and Established', async () => {
      await kubectlOk(server, ['apply', '-f', `${ROOT}deploy/crds/`]);
      await kubectlOk(server, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '-l', 'app.kubernetes.io/part-of=outpost']);
      for (const k of KINDS) {
        const crd = await api(server, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${k.plural}.outpost.dev`);
        const conditions = (crd.body.status as { conditions: { type: string; status: string; message: string }[] }).conditions;
        assert.ok(conditions.some((c) => c.type === 'NamesAccepted' && c.status === 'True'), k.kind);
        assert.ok(!conditions.some((c) => c.type === 'NonStructuralSchema' && c.status === 'True'), `${k.kind}: ${JSON.stringify(conditions)}`);
      }
      // The endpoint serves once Established; a list of each kind answers.
      for (const k of KINDS) assert.equal((await api(server, 'GET', `${path(k.kind)}?limit=1`)).status, 200, k.kind);
    });

    await t.test('a valid object of every kind is accepted, and keeps every field (spec and status) it was written with', async () => {
      for (const obj of exampleOfEveryKind()) {
        const kind = obj.kind as KindName;
        const { status, ...withoutStatus } = obj;
        const created = await api(server, 'POST', path(kind), withoutStatus);
        assert.equal(created.status, 201, `${kind}: ${JSON.stringify(created.body).slice(0, 600)}`);
        assert.deepEqual(created.body.spec, obj.spec, `${kind}: the API server pruned or changed spec fields`);
        const wantStatus = status ?? STATUS[kind];
        if (wantStatus === undefined) continue;
        const patched = await api(server, 'PATCH', path(kind, obj.metadata.name, 'status'), { status: wantStatus });
        assert.equal(patched.status, 200, `${kind} status: ${JSON.stringify(patched.body).slice(0, 600)}`);
        assert.deepEqual(patched.body.status, wantStatus, `${kind}: the API server pruned or changed status fields`);
      }
    });

    await t.test('schema-invalid objects are refused by the API server with 422 naming the field', async () => {
      const badEnum = exampleOf('EdgeApp');
      badEnum.metadata.name = 'bad-enum';
      (badEnum.spec as { template: { restartPolicy: string } }).template.restartPolicy = 'Sometimes';
      await refused(server, badEnum, 'spec.template.restartPolicy');

      const wrongType = exampleOf('EdgeApp');
      wrongType.metadata.name = 'wrong-type';
      (wrongType.spec as { replicasPerUnit: unknown }).replicasPerUnit = 'three';
      await refused(server, wrongType, 'spec.replicasPerUnit');

      const missing = exampleOf('Device');
      missing.metadata.name = 'missing-model';
      delete (missing.spec as { model?: string }).model;
      await refused(server, missing, 'spec.model');

      const badPercent = exampleOf('EdgeApp');
      badPercent.metadata.name = 'bad-percent';
      (badPercent.spec as { rollout: unknown }).rollout = { maxUnavailable: 'half' };
      await refused(server, badPercent, 'spec.rollout.maxUnavailable');

      const tooMany = exampleOf('EdgeApp');
      tooMany.metadata.name = 'too-many';
      (tooMany.spec as { rollout: unknown }).rollout = { maxSurge: 5000 };
      await refused(server, tooMany, 'spec.rollout.maxSurge');

      const badDuration = exampleOf('NodeUnit');
      badDuration.metadata.name = 'bad-duration';
      badDuration.spec = { autonomy: { rescheduleAfter: '10 minutes' } };
      await refused(server, badDuration, 'spec.autonomy.rescheduleAfter');

      const badStatus = await api(server, 'PATCH', path('EdgeNode', 'edge-a1', 'status'), { status: { phase: 'Sleeping' } });
      assert.equal(badStatus.status, 422);
      assert.ok((badStatus.body.details?.causes ?? []).some((c) => c.field === 'status.phase'), JSON.stringify(badStatus.body));

      // A rescheduleAfter of null (never) is valid, as in the hub.
      const nullDuration = exampleOf('NodeUnit');
      nullDuration.metadata.name = 'never-reschedule';
      nullDuration.spec = { autonomy: { rescheduleAfter: null } };
      assert.equal((await api(server, 'POST', path('NodeUnit'), nullDuration)).status, 201);
    });

    await t.test('kubectl get shows the printer columns: per-unit ready counts, node counts, node phase and version', async () => {
      const out = await kubectlOk(server, ['get', 'edgeapps,nodeunits,edgenodes']);
      assert.match(out, /NAME\s+READY\s+UNITS\s+REVISION\s+AGE/);
      const app = exampleOf('EdgeApp').metadata.name;
      assert.match(out, new RegExp(`edgeapp\\.outpost\\.dev/${app}\\s+1/2\\s+site-a 1/1, site-b 0/1\\s+1\\s`));
      assert.match(out, /NAME\s+READY\s+NODES\s+DISCONNECTED\s+RESCHEDULE-AFTER\s+AGE/);
      const unit = exampleOf('NodeUnit').metadata.name;
      assert.match(out, new RegExp(`nodeunit\\.outpost\\.dev/${unit}\\s+1\\s+2\\s+1\\s`));
      assert.match(out, /NAME\s+UNIT\s+PHASE\s+VERSION\s+LAST-SEEN\s+AGE/);
      assert.match(out, /edgenode\.outpost\.dev\/edge-a1\s+site-a\s+Ready\s+0\.1\.0\s/);
    });

    await t.test('kubectl get outpost lists objects of every kind (the category)', async () => {
      const out = await kubectlOk(server, ['get', 'outpost', '-o', 'name']);
      for (const obj of exampleOfEveryKind()) assert.ok(out.includes(`${obj.kind.toLowerCase()}.outpost.dev/${obj.metadata.name}`), `${obj.kind} ${obj.metadata.name} missing from:\n${out}`);
      // Short names from KINDS work, except those left out for colliding with built-in resources.
      assert.match(await kubectlOk(server, ['get', 'ea', '-o', 'name']), /edgeapp\.outpost\.dev\//);
    });

    await t.test('kubectl explain edgeapp.spec shows the documented fields', async () => {
      const out = await kubectlOk(server, ['explain', 'edgeapp.spec']);
      // kubectl wraps descriptions: compare with whitespace collapsed.
      const flat = (text: string) => text.replace(/\s+/g, ' ');
      assert.match(out, /replicasPerUnit\s+<integer>/);
      assert.match(out, /template\s+<Object> -required-/);
      assert.ok(flat(out).includes('Instances in every selected unit, spread over its ready nodes. Default 1.'), out);
      assert.ok(flat(out).includes('Per-unit variants, applied in order to the units they target (last wins).'), out);
      assert.ok(flat(out).includes('Registers every instance in its node\'s local service registry'), out);
      const rollout = await kubectlOk(server, ['explain', 'edgeapp.spec.rollout.maxUnavailable']);
      assert.ok(flat(rollout).includes('Instances of a unit that may be not ready because of the update, at once. Default 1.'), rollout);
    });

    await t.test('deploy/hub passes server-side dry run, and its RBAC lets the hub do its work and no more', async () => {
      await kubectlOk(server, ['apply', '-f', `${ROOT}deploy/hub/00-namespace.yaml`]);
      await kubectlOk(server, ['apply', '--dry-run=server', '-f', `${ROOT}deploy/hub/`]);
      await kubectlOk(server, ['apply', '-f', `${ROOT}deploy/hub/10-rbac.yaml`]);
      const can = async (args: string[]) => (await server.kubectl(['auth', 'can-i', ...args, '--as', HUB_SA])).stdout.trim();
      for (const k of KINDS) {
        assert.equal(await can(['watch', `${k.plural}.outpost.dev`]), 'yes', k.plural);
        assert.equal(await can(['delete', `${k.plural}.outpost.dev`]), 'yes', k.plural);
        assert.equal(await can(['update', `${k.plural}.outpost.dev`, '--subresource=status']), 'yes', `${k.plural}/status`);
      }
      assert.equal(await can(['patch', 'edgeapps.outpost.dev']), 'no');
      assert.equal(await can(['update', 'leases.coordination.k8s.io', '-n', 'outpost-system']), 'yes');
      assert.equal(await can(['watch', 'secrets', '-n', 'outpost-system']), 'yes');
      assert.equal(await can(['get', 'secrets', '-n', 'default']), 'no');
      assert.equal(await can(['update', 'leases.coordination.k8s.io', '-n', 'default']), 'no');
      assert.equal(await can(['list', 'pods', '-n', 'outpost-system']), 'no');
      assert.equal(await can(['create', 'customresourcedefinitions.apiextensions.k8s.io']), 'no');
    });
  } finally {
    await server.stop();
  }
});
