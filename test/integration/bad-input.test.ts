// Bad input gets a clear error naming what is wrong, and changes nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorBody } from '../../shared/errors.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { startTestHub, type HubFixture } from '../helpers/in-process-hub.js';
import { runCli } from '../helpers/cluster.js';

const API = '/apis/outpost.dev/v1alpha1';

describe('bad input', () => {
  let h: HubFixture;
  // "Changes nothing": the objects a bad request names do not exist, and `keep` is untouched.
  let keepVersion = '';
  const revision = async () => {
    const keep = (await h.api<{ metadata: { resourceVersion: string; generation: number } }>('GET', `${API}/edgeapps/keep`)).body;
    const names = (await h.api<{ items: { metadata: { name: string } }[] }>('GET', `${API}/edgeapps`)).body.items.map((a) => a.metadata.name);
    return `${keep.metadata.generation}:${names.join(',')}`;
  };
  const cli = (args: string[], input?: string) => runCli(args, { OUTPOST_SERVER: h.hub.url, OUTPOST_TOKEN: h.hub.adminToken }, input);

  before(async () => {
    h = await startTestHub();
    await h.api('POST', `${API}/nodeunits`, nodeUnit('site-a'));
    await h.api('POST', `${API}/edgeapps`, edgeApp('keep'));
    keepVersion = await revision();
  });
  after(() => h.close());

  test('API: wrong-typed and missing fields are 422 naming the field path', async () => {
    const rev = await revision();
    const wrongType = edgeApp('bad');
    (wrongType.spec as unknown as Record<string, unknown>).replicasPerUnit = 'three';
    const r1 = await h.api<ErrorBody>('POST', `${API}/edgeapps`, wrongType);
    assert.equal(r1.status, 422);
    assert.equal(r1.body.code, 'OUTPOST_INVALID');
    assert.ok(r1.body.fields?.some((f) => f.path === '/spec/replicasPerUnit'), JSON.stringify(r1.body));

    const missing = edgeApp('bad2');
    delete (missing.spec.template.processes?.[0] as { command?: string }).command;
    const r2 = await h.api<ErrorBody>('PUT', `${API}/edgeapps/bad2`, missing);
    assert.equal(r2.status, 422);
    assert.match(r2.body.message, /\/spec\/template\/processes\/0\/command/);

    const unknownField = { ...edgeApp('bad3'), spec: { ...edgeApp('bad3').spec, replicas: 2 } };
    const r3 = await h.api<ErrorBody>('POST', `${API}/edgeapps`, unknownField);
    assert.equal(r3.status, 422);
    assert.equal(await revision(), rev, 'nothing written');
    assert.equal(rev, keepVersion);
  });

  test('API: issue 4 fields refused at apply time with the field path; an override for a missing unit only warns', async () => {
    const rev = await revision();
    const cases: Array<[string, (a: ReturnType<typeof edgeApp>) => void, RegExp]> = [
      ['bad-patch', (a) => { a.spec.overrides = [{ units: { names: ['site-a'] }, patches: [{ op: 'replace', path: '/processes/0/nothing/here', value: 1 }] }]; }, /\/spec\/overrides\/0\/patches\/0/],
      ['bad-patch-result', (a) => { a.spec.overrides = [{ units: { names: ['site-a'] }, patches: [{ op: 'add', path: '/processes/0/bogus', value: 1 }] }]; }, /\/spec\/overrides\/0\/patches/],
      ['negative', (a) => { a.spec.overrides = [{ units: { names: ['site-a'] }, replicas: -1 }]; }, /\/spec\/overrides\/0\/replicas/],
      ['unknown-field', (a) => { (a.spec.template.processes?.[0] as Record<string, unknown>).image = 'nginx'; }, /\/spec\/template\/processes\/0\/image/],
      ['no-probe-target', (a) => { a.spec.template.processes![0]!.readinessProbe = { periodSeconds: 5 }; }, /\/spec\/template\/processes\/0\/readinessProbe: a probe needs a target/],
      ['two-runtimes', (a) => { a.spec.template.containers = [{ image: 'busybox' }]; }, /\/spec\/template: set exactly one of processes or containers/],
      ['bad-quantity', (a) => { a.spec.template.processes![0]!.resources = { requests: { memory: 'lots' } }; }, /\/spec\/template\/processes\/0\/resources\/requests\/memory/],
    ];
    for (const [name, mutate, path] of cases) {
      const app = edgeApp(name);
      mutate(app);
      const r = await h.api<ErrorBody>('PUT', `${API}/edgeapps/${name}`, app);
      assert.equal(r.status, 422, `${name}: ${JSON.stringify(r.body)}`);
      assert.match(`${r.body.message} ${JSON.stringify(r.body.fields)}`, path, name);
    }
    assert.equal(await revision(), rev, 'nothing was written');

    const ghost = edgeApp('ghost-override');
    ghost.spec.overrides = [{ units: { names: ['no-such-unit'] }, replicas: 3 }];
    const ok = await h.api('PUT', `${API}/edgeapps/ghost-override`, ghost);
    assert.ok(ok.status === 200 || ok.status === 201, JSON.stringify(ok.body));
    const deadline = Date.now() + 10_000;
    let warnings: string[] = [];
    while (Date.now() < deadline && warnings.length === 0) {
      warnings = (await h.api<{ status?: { warnings?: string[] } }>('GET', `${API}/edgeapps/ghost-override`)).body.status?.warnings ?? [];
      if (warnings.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(warnings.some((w) => /no-such-unit/.test(w)), JSON.stringify(warnings));
    await h.api('DELETE', `${API}/edgeapps/ghost-override`);
  });

  test('API: bad JSON is 400, unknown kind 404, wrong admin token 401, missing token 401', async () => {
    const rev = await revision();
    const r1 = await h.api<ErrorBody>('POST', `${API}/edgeapps`, '{"apiVersion": ');
    assert.equal(r1.status, 400);
    assert.equal(r1.body.code, 'OUTPOST_INVALID_JSON');
    const r2 = await h.api<ErrorBody>('GET', `${API}/gadgets`);
    assert.equal(r2.status, 404);
    assert.equal(r2.body.code, 'OUTPOST_UNKNOWN_KIND');
    const r3 = await h.api<ErrorBody>('POST', `${API}/edgeapps`, { ...edgeApp('x'), kind: 'Gadget' });
    assert.equal(r3.status, 404);
    const r4 = await h.api<ErrorBody>('POST', `${API}/edgeapps`, edgeApp('x'), { token: 'adm_wrong' });
    assert.equal(r4.status, 401);
    assert.match(r4.body.message, /admin token is not valid/);
    const r5 = await fetch(`${h.hub.url}${API}/edgeapps`);
    assert.equal(r5.status, 401);
    const r6 = await h.api<ErrorBody>('POST', `${API}/edgeapps`, 'x'.repeat(2 * 1024 * 1024));
    assert.equal(r6.status, 413);
    const r7 = await h.api<ErrorBody>('POST', `${API}/instances`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'Instance', metadata: { name: 'forged' }, spec: { app: 'keep', unit: 'site-a', node: 'n', index: 0, template: { processes: [{ command: 'sh' }] }, templateHash: 'x' } });
    assert.equal(r7.status, 405, 'instances are the hub\'s to write');
    const stale = await h.api<ErrorBody>('PUT', `${API}/edgeapps/keep`, { ...edgeApp('keep', { replicasPerUnit: 3 }), metadata: { name: 'keep', resourceVersion: '1' } });
    assert.equal(stale.status, 409, 'stale resourceVersion is a conflict');
    assert.equal(await revision(), rev, 'nothing written');
    assert.equal(rev, keepVersion);
  });

  test('join: wrong, expired, used-up and other-unit tokens are refused clearly', async () => {
    const join = async (token: string, node: string) => {
      const res = await fetch(`${h.hub.url}/agent/v1/join`, { method: 'POST', body: JSON.stringify({ token, node }) });
      return { status: res.status, body: (await res.json()) as ErrorBody };
    };
    const rev = await revision();
    assert.equal((await join('000000000000.wrongwrongwrongwrong', 'n1')).body.code, 'OUTPOST_TOKEN_INVALID');
    assert.equal((await join('garbage', 'n1')).status, 401);
    const expired = (await h.api<{ token: string }>('POST', `${API}/jointokens`, { unit: 'site-a', ttl: '1ms' })).body.token;
    await new Promise((r) => setTimeout(r, 20));
    const e = await join(expired, 'n1');
    assert.equal(e.body.code, 'OUTPOST_TOKEN_EXPIRED');
    assert.match(e.body.message, /expired at/);
    const once = (await h.api<{ token: string }>('POST', `${API}/jointokens`, { unit: 'site-a', uses: 1 })).body.token;
    assert.equal((await join(once, 'n1')).status, 201);
    const again = await join(once, 'n2');
    assert.equal(again.body.code, 'OUTPOST_TOKEN_USED_UP');
    const dup = (await h.api<{ token: string }>('POST', `${API}/jointokens`, { unit: 'site-a', uses: 5 })).body.token;
    const exists = await join(dup, 'n1');
    assert.equal(exists.body.code, 'OUTPOST_NODE_EXISTS', 'a token never grants an existing node\'s identity');
    const noUnit = await h.api<ErrorBody>('POST', `${API}/jointokens`, { unit: 'nowhere' });
    assert.equal(noUnit.status, 404);
    const nodes = (await h.api<{ items: { metadata: { name: string } }[] }>('GET', `${API}/edgenodes`)).body.items.map((n) => n.metadata.name);
    assert.deepEqual(nodes, ['n1'], 'refused joins created no node');
  });

  test('CLI: invalid YAML, unknown kind, wrong types exit non-zero with the reason on stderr and change nothing', async () => {
    const rev = await revision();
    const yamlErr = (await cli(['apply', '-f', '-'], 'apiVersion: outpost.dev/v1alpha1\nkind: EdgeApp\nmetadata: {name: x\n'));
    assert.notEqual(yamlErr.code, 0);
    assert.match(yamlErr.stderr, /stdin: document 1 line \d+/);
    const kindErr = (await cli(['apply', '-f', '-'], 'apiVersion: outpost.dev/v1alpha1\nkind: Gadget\nmetadata: {name: x}\nspec: {}\n'));
    assert.notEqual(kindErr.code, 0);
    assert.match(kindErr.stderr, /unknown kind "Gadget"/);
    // The second document is bad: the first must not be applied either.
    const typeErr = await cli(['apply', '-f', '-'], `${JSON.stringify(edgeApp('fine'))}\n---\n${JSON.stringify({ ...edgeApp('broken'), spec: { ...edgeApp('broken').spec, replicasPerUnit: -1 } })}\n`);
    assert.notEqual(typeErr.code, 0);
    assert.match(typeErr.stderr, /document 2/);
    assert.match(typeErr.stderr, /\/spec\/replicasPerUnit/);
    assert.equal((await cli(['get', 'gadgets'])).code, 1);
    assert.match((await cli(['get', 'apps', '-o', 'xml'])).stderr, /xml/);
    const wrongToken = await runCli(['get', 'apps'], { OUTPOST_SERVER: h.hub.url, OUTPOST_TOKEN: 'nope' });
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /admin token is not valid/);
    assert.equal(await revision(), rev, 'nothing written');
    assert.equal(rev, keepVersion);
    assert.equal((await h.api('GET', `${API}/edgeapps/fine`)).status, 404);
  });
});
