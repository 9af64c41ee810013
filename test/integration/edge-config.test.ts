// EdgeConfig end to end with a real hub, real agents and a real process: delivery only to the
// units whose apps use a config, files that follow a change in place, secrets redacted on the
// API and sealed in the agent's SQLite file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { EdgeConfig, EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, type Proc } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const marker = `outpost-cfg-${randomBytes(4).toString('hex')}`;
const secret = `pw-${randomBytes(12).toString('hex')}`;
const secret2 = `pw2-${randomBytes(12).toString('hex')}`;

const units = `apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-a}
---
apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-b}
`;

const configYaml = (greeting: string, password: string) => `apiVersion: outpost.dev/v1alpha1
kind: EdgeConfig
metadata: {name: shop-conf}
spec:
  data:
    greeting: "${greeting} in {{unit}} on {{node}}"
  secretData:
    password: "${password}"
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeConfig
metadata: {name: other-conf}
spec:
  data: {x: "1"}
`;

function appYaml(usesConfig: boolean): string {
  const refs = usesConfig ? `
        envFrom: [{config: shop-conf, prefix: CFG_}]
        configMounts: [{config: shop-conf}]` : '';
  return `apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: reader}
spec:
  units: {names: [site-a]}
  template:
    processes:
      - command: sh
        args: ["-c", "echo \\"dir=$OUTPOST_CONFIG_DIR_SHOP_CONF\\"; while true; do echo \\"greeting=$(cat $OUTPOST_CONFIG_DIR_SHOP_CONF/greeting 2>/dev/null)\\"; sleep 0.2; done", "${marker}"]${refs}
    terminationGracePeriodSeconds: 1
`;
}

const otherApp = `apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: b-app}
spec:
  units: {names: [site-b]}
  template:
    processes:
      - command: sh
        args: ["-c", "while true; do sleep 1; done", "${marker}"]
        envFrom: [{config: other-conf}]
    terminationGracePeriodSeconds: 1
`;

function markedPids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('EdgeConfig with a real hub and agents', () => {
  const cluster = new TestCluster();
  const agents: Proc[] = [];
  const agentDir = (node: string) => join(cluster.dir, 'agents', node);
  const shmDir = (node: string) => join('/dev/shm', `outpost-${createHash('sha256').update(resolve(agentDir(node))).digest('hex').slice(0, 16)}`);
  const cachedConfigs = (node: string): string[] => {
    const db = new Database(join(agentDir(node), 'cache.db'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare<[], { name: string }>("SELECT name FROM desired_objects WHERE kind = 'EdgeConfig' ORDER BY name").all().map((r) => r.name);
    } finally {
      db.close();
    }
  };
  const log = () => {
    const f = join(agentDir('node-a'), 'logs', 'reader-site-a-0', 'current.log');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  };

  before(async () => {
    await cluster.startHub();
    assert.equal(cluster.cli(['apply', '-f', '-'], units).code, 0);
    agents.push(await cluster.startAgent('node-a', 'site-a'), await cluster.startAgent('node-b', 'site-b'));
    await waitFor(async () => (await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items.filter((n) => n.status?.phase === 'Ready').length === 2, { timeoutMs: 20_000, message: 'both nodes Ready' });
  });

  after(async () => {
    await cluster.cleanup();
    for (const pid of markedPids()) killGroup(pid);
    for (const n of ['node-a', 'node-b']) rmSync(shmDir(n), { recursive: true, force: true });
  });

  test('a config reaches only the nodes whose apps use it; a running process sees its files change; dropping it removes it', async () => {
    const applied = cluster.cli(['apply', '-f', '-'], `${configYaml('hello', secret)}---\n${appYaml(true)}---\n${otherApp}`);
    assert.equal(applied.code, 0, applied.stderr);
    const running = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/reader-site-a-0`);
      return i.status?.phase === 'Running' && i.status.pid ? i : undefined;
    }, { timeoutMs: 20_000, message: 'reader running' });
    await waitFor(() => log().includes('greeting=hello in site-a on node-a'), { timeoutMs: 10_000, message: 'the process reads its mounted file' });
    await waitFor(() => cachedConfigs('node-b').length > 0, { timeoutMs: 10_000, message: 'node-b gets its config' });
    assert.deepEqual(cachedConfigs('node-a'), ['shop-conf']);
    assert.deepEqual(cachedConfigs('node-b'), ['other-conf'], 'node-b never gets the config of site-a\'s app');

    // The secret: a file on tmpfs under the agent's private (0700) directory, and env through envFrom.
    const dir = /dir=(\S+)/.exec(log())?.[1] ?? '';
    assert.equal(dir, join(shmDir('node-a'), 'shop-conf'));
    assert.equal(readFileSync(join(dir, 'password'), 'utf8'), secret);
    assert.equal(statSync(join(dir, 'password')).mode & 0o777, 0o644, 'readable by a container\'s own user');
    assert.equal(statSync(shmDir('node-a')).mode & 0o777, 0o700, 'other users of the node are kept out');
    const environ = readFileSync(`/proc/${running.status?.pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes(`CFG_password=${secret}`));
    assert.ok(environ.includes('CFG_greeting=hello in site-a on node-a'));

    // A change reaches the file in place; the app does not opt in to restarts, so the pid stays.
    assert.equal(cluster.cli(['apply', '-f', '-'], configYaml('bonjour', secret2)).code, 0);
    await waitFor(() => log().includes('greeting=bonjour in site-a on node-a'), { timeoutMs: 15_000, message: 'the process sees the change' });
    await waitFor(() => readFileSync(join(dir, 'password'), 'utf8') === secret2, { timeoutMs: 5000, message: 'secret file rewritten' });
    const same = await cluster.api<Instance>('GET', `${API}/instances/reader-site-a-0`);
    assert.equal(same.status?.pid, running.status?.pid);
    assert.ok(markedPids().includes(running.status?.pid ?? 0));

    // The agent's SQLite files (and their WALs) never hold the secret plaintext: not the cache,
    // and not the runtime records (the process env from configs is not persisted).
    const raw = ['cache.db', 'cache.db-wal', 'runtime.db', 'runtime.db-wal'].map((f) => join(agentDir('node-a'), f)).filter(existsSync).map((f) => readFileSync(f));
    assert.ok(raw.some((b) => b.includes('shop-conf')), 'the config is in the file');
    for (const b of raw) {
      assert.ok(!b.includes(secret) && !b.includes(secret2), 'no secret plaintext in cache.db or runtime.db');
    }
    assert.equal(statSync(join(agentDir('node-a'), 'config.key')).mode & 0o777, 0o600);

    // The app stops using the config: the node loses it, and its secret files go with it.
    assert.equal(cluster.cli(['apply', '-f', '-'], appYaml(false)).code, 0);
    await waitFor(() => cachedConfigs('node-a').length === 0, { timeoutMs: 15_000, message: 'config removed from node-a' });
    await waitFor(() => !existsSync(dir), { timeoutMs: 15_000, message: 'secret files removed' });
  });

  test('an app with restartOnConfigChange is rolled when its config changes; its new process reads the new value', async () => {
    const yaml = (v: string) => `apiVersion: outpost.dev/v1alpha1
kind: EdgeConfig
metadata: {name: roll-conf}
spec:
  data: {v: "${v}"}
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: roller}
spec:
  units: {names: [site-a]}
  restartOnConfigChange: true
  template:
    processes:
      - command: sh
        args: ["-c", "while true; do sleep 1; done", "${marker}"]
        envFrom: [{config: roll-conf, prefix: ROLL_}]
    terminationGracePeriodSeconds: 1
`;
    assert.equal(cluster.cli(['apply', '-f', '-'], yaml('1')).code, 0);
    const first = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/roller-site-a-0`);
      return i.status?.phase === 'Running' && i.status.pid ? i : undefined;
    }, { timeoutMs: 20_000, message: 'roller running' });
    assert.ok(readFileSync(`/proc/${first.status?.pid}/environ`, 'utf8').split('\0').includes('ROLL_v=1'));
    assert.equal(cluster.cli(['apply', '-f', '-'], yaml('2')).code, 0);
    const second = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/roller-site-a-0`);
      return i.status?.phase === 'Running' && i.status.pid && i.status.pid !== first.status?.pid && i.status.templateHash === i.spec.templateHash ? i : undefined;
    }, { timeoutMs: 20_000, message: 'roller restarted by the config change' });
    assert.notEqual(second.spec.templateHash, first.spec.templateHash);
    assert.ok(readFileSync(`/proc/${second.status?.pid}/environ`, 'utf8').split('\0').includes('ROLL_v=2'));
  });

  test('get -o yaml redacts secrets, --show-secrets shows them; a redacted read-back applies without changing them', async () => {
    cluster.cli(['apply', '-f', '-'], configYaml('hello', secret));
    const yaml = cluster.cli(['get', 'configs', 'shop-conf', '-o', 'yaml']);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /password: <redacted>/);
    assert.ok(!yaml.stdout.includes(secret));
    const list = cluster.cli(['get', 'configs', '-o', 'json']);
    assert.ok(!list.stdout.includes(secret) && list.stdout.includes('<redacted>'));
    const shown = cluster.cli(['get', 'configs', 'shop-conf', '-o', 'yaml', '--show-secrets']);
    assert.match(shown.stdout, new RegExp(`password: ${secret}`));

    const back = cluster.cli(['apply', '-f', '-'], yaml.stdout);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /edgeconfig\/shop-conf unchanged/);
    // Retried: the CLI runs synchronously, and a pooled keep-alive socket may have closed meanwhile.
    const stored = await waitFor(() => cluster.api<EdgeConfig>('GET', `${API}/edgeconfigs/shop-conf?showSecrets=true`), { message: 'read the config' });
    assert.equal(stored.spec.secretData?.password, secret);

    const bad = cluster.cli(['apply', '-f', '-'], yaml.stdout.replace('password: <redacted>', 'password: <redacted>\n    extra: <redacted>').replace(/\n {2}resourceVersion: .*\n/, '\n'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /secretData "extra" is "<redacted>" but no stored value exists/);

    // Watch streams redacted objects too.
    const ac = new AbortController();
    const res = await waitFor(() => fetch(`${cluster.requireHub().url}${API}/edgeconfigs?watch=true`, { headers: { Authorization: `Bearer ${cluster.requireHub().token}` }, signal: ac.signal }), { message: 'watch' });
    const reader = res.body?.getReader();
    let text = '';
    await waitFor(async () => {
      const chunk = await reader?.read();
      text += Buffer.from(chunk?.value ?? new Uint8Array()).toString();
      return text.includes('shop-conf');
    }, { timeoutMs: 5000, message: 'watch event' });
    ac.abort();
    assert.ok(text.includes('<redacted>') && !text.includes(secret));

    // No secret value in any hub or agent log line (the hub logs at debug level here).
    for (const p of [cluster.requireHub(), ...agents]) {
      assert.ok(p.output().length > 0);
      assert.ok(!p.output().includes(secret) && !p.output().includes(secret2), 'no secret in a log');
    }
  });
});
