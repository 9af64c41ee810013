import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DesiredCache } from '../../edge-agent/cache/desired-cache.js';
import { loadOrCreateNodeKey } from '../../edge-agent/configs/node-key.js';
import { open, seal, SecretOpenError, SEALED_PREFIX } from '../../edge-agent/configs/secret-box.js';
import { SecretCodec } from '../../edge-agent/configs/secret-codec.js';
import { API_VERSION, type EdgeConfig } from '../../shared/api/index.js';
import { objectDigest } from '../../shared/hash.js';

const config = (name: string, data: Record<string, string>, secretData: Record<string, string>): EdgeConfig => ({
  apiVersion: API_VERSION, kind: 'EdgeConfig', metadata: { name, uid: `uid-${name}`, generation: 1, resourceVersion: '3' }, spec: { data, secretData },
});

test('secret box: a sealed value opens with the same key and context, and never shows the plaintext', () => {
  const key = randomBytes(32);
  const a = seal(key, 'hunter2', 'ctx');
  const b = seal(key, 'hunter2', 'ctx');
  assert.ok(a.startsWith(SEALED_PREFIX));
  assert.notEqual(a, b, 'a fresh IV per value');
  assert.ok(!a.includes('hunter2'));
  assert.equal(open(key, a, 'ctx'), 'hunter2');
  assert.equal(open(key, seal(key, '', 'ctx'), 'ctx'), '');
  assert.equal(open(key, seal(key, 'ünïcode ✓', 'ctx'), 'ctx'), 'ünïcode ✓');
});

test('secret box: a wrong key, a tampered value or another context fails with a clear error', () => {
  const key = randomBytes(32);
  const sealed = seal(key, 'hunter2', 'ctx');
  assert.throws(() => open(randomBytes(32), sealed, 'ctx'), (e: unknown) => e instanceof SecretOpenError && /wrong key, or the sealed value was changed/.test(e.message));
  const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
  raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
  assert.throws(() => open(key, SEALED_PREFIX + raw.toString('base64'), 'ctx'), SecretOpenError);
  assert.throws(() => open(key, sealed, 'other'), SecretOpenError);
  assert.throws(() => open(key, `${SEALED_PREFIX}AAAA`, 'ctx'), /truncated/);
  assert.throws(() => seal(randomBytes(16), 'x', 'ctx'), /32 bytes/);
});

test('node key: made once with mode 0600, read back the same; a damaged file is refused clearly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-key-'));
  try {
    const k1 = loadOrCreateNodeKey(dir);
    assert.equal(k1.length, 32);
    assert.equal(statSync(join(dir, 'config.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadOrCreateNodeKey(dir), k1);
    writeFileSync(join(dir, 'config.key'), 'c2hvcnQ=\n');
    assert.throws(() => loadOrCreateNodeKey(dir), /does not hold a 32-byte key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('agent cache with the secret codec: the SQLite file holds no secret plaintext, reads give it back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-codec-'));
  try {
    const path = join(dir, 'cache.db');
    const key = randomBytes(32);
    const db = new Database(path);
    const cache = new DesiredCache(db, new SecretCodec(key));
    const cfg = config('db', { host: 'db.local' }, { password: 'S3cr3t-pl41ntext' });
    cache.apply({ type: 'sync', revision: 4, objects: [cfg], deletes: [] });
    const row = db.prepare<[], { json: string; digest: string }>("SELECT json, digest FROM desired_objects WHERE kind = 'EdgeConfig'").get();
    assert.ok(row && !row.json.includes('S3cr3t-pl41ntext'));
    assert.ok(row.json.includes('db.local'), 'plain data stays readable');
    assert.notEqual(row.digest, objectDigest(cfg), 'the stored digest is sealed too');
    assert.deepEqual(cache.get<EdgeConfig>('EdgeConfig', 'db')?.spec, cfg.spec);
    assert.deepEqual(cache.cachedKeys(), [{ kind: 'EdgeConfig', name: 'db', digest: objectDigest(cfg) }]);
    db.close();
    assert.ok(!readFileSync(path).includes('S3cr3t-pl41ntext'));

    // Another key (config.key lost): reads fail naming the config; the digest is unknown, so the hub resends.
    const other = new DesiredCache(new Database(path), new SecretCodec(randomBytes(32)));
    assert.throws(() => other.get('EdgeConfig', 'db'), /cannot decrypt secret "password" of EdgeConfig "db"/);
    assert.deepEqual(other.cachedKeys(), [{ kind: 'EdgeConfig', name: 'db', digest: '' }]);
    other.apply({ type: 'sync', revision: 5, objects: [cfg], deletes: [] });
    assert.equal(other.get<EdgeConfig>('EdgeConfig', 'db')?.spec.secretData?.password, 'S3cr3t-pl41ntext');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
