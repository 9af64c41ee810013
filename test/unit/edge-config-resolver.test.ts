import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, closeSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileConfigResolver } from '../../edge-agent/configs/config-resolver.js';
import { SecretDir } from '../../edge-agent/configs/secret-dir.js';
import { WorkloadRuntime, type InstanceRuntime } from '../../edge-agent/runtime/workload-runtime.js';
import type { DesiredInstance } from '../../edge-agent/runtime/types.js';
import { API_VERSION, type AppTemplate, type EdgeConfig, type InstanceStatus } from '../../shared/api/index.js';
import { silentLogger } from '../../shared/logger.js';
import { processTemplate } from '../helpers/objects.js';

const config = (name: string, data: Record<string, string>, secretData?: Record<string, string>): EdgeConfig => ({
  apiVersion: API_VERSION, kind: 'EdgeConfig', metadata: { name }, spec: { data, ...(secretData && { secretData }) },
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-resolver-'));
  const configs = new Map<string, EdgeConfig>();
  const units: string[] = [];
  const instances: { spec: { template: AppTemplate } }[] = [];
  const cache = {
    instances: () => instances,
    get: <T extends EdgeConfig>(_kind: 'EdgeConfig', name: string) => configs.get(name) as T | undefined,
    cachedKeys: () => [...configs.keys()].map((name) => ({ kind: 'EdgeConfig', name })),
    list: () => units.map((name) => ({ metadata: { name } })),
  };
  // A directory that is no tmpfs: secret configs go to the on-disk fallback, <data>/secret-configs.
  const secretDir = new SecretDir(join(dir, 'data'), join(dir, 'no-tmpfs'));
  const secretRoot = join(dir, 'data', 'secret-configs');
  const resolver = new FileConfigResolver({ cache, log: silentLogger() }, { node: 'edge-a1', unit: 'site-a', plainDir: join(dir, 'configs'), secretDir });
  return { dir, secretRoot, configs, units, instances, resolver, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const mode = (p: string) => statSync(p).mode & 0o777;

test('resolver: envFrom gives prefix + key for data and secrets, substituted; keys that are no variable name are left out', () => {
  const s = setup();
  try {
    s.configs.set('app', config('app', { LEVEL: 'debug', URL: 'http://{{unit}}.local/{{node}}', 'app.conf': 'x=1' }, { TOKEN: 'tk-{{unit}}', LEVEL: 'secret-wins' }));
    const t = processTemplate({ command: 'x', envFrom: [{ config: 'app', prefix: 'APP_' }, { config: 'app' }] });
    const { env, dirs } = s.resolver.resolve('i-0', t);
    assert.deepEqual(env, {
      APP_LEVEL: 'secret-wins', APP_URL: 'http://site-a.local/edge-a1', APP_TOKEN: 'tk-site-a',
      LEVEL: 'secret-wins', URL: 'http://site-a.local/edge-a1', TOKEN: 'tk-site-a',
    });
    assert.deepEqual(dirs, {});
  } finally {
    s.cleanup();
  }
});

test('resolver: a mounted plain config is a directory of files under <data>/configs, one per key, substituted', () => {
  const s = setup();
  try {
    s.configs.set('web', config('web', { 'site.conf': 'unit={{unit}} node={{node}}', motd: 'hi' }));
    const { dirs } = s.resolver.resolve('i-0', processTemplate({ command: 'x', configMounts: [{ config: 'web' }] }));
    const dir = dirs.web ?? '';
    assert.equal(dir, join(s.dir, 'configs', 'web'));
    assert.deepEqual(readdirSync(dir).sort(), ['motd', 'site.conf']);
    assert.equal(readFileSync(join(dir, 'site.conf'), 'utf8'), 'unit=site-a node=edge-a1');
    assert.equal(mode(join(dir, 'motd')), 0o644);
    // The node moved to another unit: the cache's NodeUnit names it.
    s.units.push('site-z');
    s.resolver.resolve('i-0', processTemplate({ command: 'x', configMounts: [{ config: 'web' }] }));
    assert.equal(readFileSync(join(dir, 'site.conf'), 'utf8'), 'unit=site-z node=edge-a1');
  } finally {
    s.cleanup();
  }
});

test('resolver: a config with secrets goes wholly to the secret dir (0700 parent; files readable by any user of a container)', () => {
  const s = setup();
  try {
    s.configs.set('db', config('db', { host: 'db' }, { password: 'pw' }));
    const { dirs } = s.resolver.resolve('i-0', processTemplate({ command: 'x', configMounts: [{ config: 'db' }] }));
    assert.equal(dirs.db, join(s.secretRoot, 'db'));
    assert.equal(mode(s.secretRoot), 0o700);
    assert.equal(mode(join(s.secretRoot, 'db')), 0o755);
    for (const f of ['host', 'password']) assert.equal(mode(join(s.secretRoot, 'db', f)), 0o644);
    assert.equal(readFileSync(join(s.secretRoot, 'db', 'password'), 'utf8'), 'pw');
    // Losing its secrets moves it to the plain place; the old copy stays while a running
    // instance uses it, and goes with the next prune after that.
    s.configs.set('db', config('db', { host: 'db' }));
    s.resolver.resolve('i-0', processTemplate({ command: 'x', configMounts: [{ config: 'db' }] }));
    s.resolver.prune(new Set([join(s.secretRoot, 'db')]));
    assert.ok(existsSync(join(s.secretRoot, 'db')), 'in use: kept');
    s.resolver.prune();
    assert.ok(!existsSync(join(s.secretRoot, 'db')));
    assert.deepEqual(readdirSync(join(s.dir, 'configs', 'db')), ['host']);
  } finally {
    s.cleanup();
  }
});

test('resolver: a change rewrites changed files by rename (an open reader keeps the old content whole), leaves others, removes dropped keys', () => {
  const s = setup();
  try {
    const t = processTemplate({ command: 'x', configMounts: [{ config: 'web' }] });
    s.configs.set('web', config('web', { a: 'old-a'.repeat(1000), b: 'same', c: 'dropped' }));
    const dir = s.resolver.resolve('i-0', t).dirs.web ?? '';
    const inodeA = lstatSync(join(dir, 'a')).ino;
    const inodeB = lstatSync(join(dir, 'b')).ino;
    const reader = openSync(join(dir, 'a'), 'r');
    try {
      s.configs.set('web', config('web', { a: 'new-a', b: 'same' }));
      s.resolver.resolve('i-0', t);
      const buf = Buffer.alloc(6000);
      const n = readSync(reader, buf, 0, buf.length, 0);
      assert.equal(buf.subarray(0, n).toString(), 'old-a'.repeat(1000), 'the old file is intact for its reader');
    } finally {
      closeSync(reader);
    }
    assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'new-a');
    assert.notEqual(lstatSync(join(dir, 'a')).ino, inodeA, 'replaced by rename');
    assert.equal(lstatSync(join(dir, 'b')).ino, inodeB, 'an unchanged file is not rewritten');
    assert.deepEqual(readdirSync(dir).sort(), ['a', 'b'], 'no dropped key and no temp file left');
  } finally {
    s.cleanup();
  }
});

test('resolver: a config not in the cache is an error naming it; prune removes the files of configs gone from the cache', () => {
  const s = setup();
  try {
    assert.throws(() => s.resolver.resolve('i-0', processTemplate({ command: 'x', envFrom: [{ config: 'nope' }] })), /EdgeConfig "nope" is not on this node \(instance i-0 uses it\)/);
    s.configs.set('keep', config('keep', { k: 'v' }));
    s.configs.set('gone', config('gone', { k: 'v' }, { s: 'secret' }));
    s.resolver.resolve('i-0', processTemplate({ command: 'x', configMounts: [{ config: 'keep' }, { config: 'gone' }] }));
    s.configs.delete('gone');
    // A cached instance still uses it: its files stay (the instance keeps running on them).
    s.instances.push({ spec: { template: processTemplate({ command: 'x', configMounts: [{ config: 'gone' }] }) } });
    s.resolver.prune();
    assert.ok(existsSync(join(s.secretRoot, 'gone', 's')));
    s.instances.length = 0;
    s.resolver.prune();
    assert.ok(existsSync(join(s.dir, 'configs', 'keep', 'k')));
    assert.ok(!existsSync(join(s.secretRoot, 'gone')));
    assert.ok(!existsSync(s.secretRoot), 'the empty secret parent goes too');
  } finally {
    s.cleanup();
  }
});

test('workload runtime: an instance whose config is missing is Failed with the resolver\'s message; its directory reaches the process env', () => {
  const s = setup();
  try {
    const reconciled: DesiredInstance[][] = [];
    const statuses: Array<[string, InstanceStatus]> = [];
    const fake: InstanceRuntime<DesiredInstance> = {
      start: async () => undefined, stop: async () => undefined, stopAllInstances: async () => undefined,
      reconcile: (d) => { reconciled.push(d); }, onStatus: () => undefined, onEvent: () => undefined, statuses: () => new Map(),
    };
    const runtime = new WorkloadRuntime(fake, undefined, s.resolver);
    runtime.onStatus((n, st) => statuses.push([n, st]));
    const t = processTemplate({ command: 'x', configMounts: [{ config: 'web' }], env: { OWN: '1' } });
    runtime.reconcile([{ name: 'i-0', template: t, templateHash: 'h1' }]);
    assert.equal(statuses[0]?.[1].phase, 'Failed');
    assert.match(statuses[0]?.[1].message ?? '', /EdgeConfig "web"/);
    s.configs.set('web', config('web', { k: 'v' }));
    runtime.reconcile([{ name: 'i-0', template: t, templateHash: 'h1' }]);
    assert.equal(reconciled.at(-1)?.[0]?.template.env?.OUTPOST_CONFIG_DIR_WEB, join(s.dir, 'configs', 'web'));
  } finally {
    s.cleanup();
  }
});

test('secret dir: on tmpfs when there is one (made only when needed), else under the data dir; a planted symlink is never used', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-shm-'));
  try {
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    const noTmpfs = new SecretDir(data, join(dir, 'not-shm'));
    assert.equal(noTmpfs.tmpfs, undefined);
    assert.equal(noTmpfs.ensure(), join(data, 'secret-configs'));
    assert.equal(mode(join(data, 'secret-configs')), 0o700);
    const real = new SecretDir(data);
    if (!real.tmpfs) return; // this machine has no tmpfs at /dev/shm
    try {
      assert.match(real.tmpfs, /^\/dev\/shm\/outpost-[0-9a-f]{16}$/);
      assert.ok(!existsSync(real.tmpfs), 'nothing is made before a secret config is written');
      assert.equal(real.ensure(), real.tmpfs);
      assert.equal(mode(real.tmpfs), 0o700);
      rmSync(real.tmpfs, { recursive: true });
      symlinkSync(dir, real.tmpfs);
      assert.equal(real.ensure(), join(data, 'secret-configs'), 'a symlink in /dev/shm is refused');
    } finally {
      rmSync(real.tmpfs, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
