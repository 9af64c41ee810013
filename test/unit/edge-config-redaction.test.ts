import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { configsHash } from '../../cloud-hub/configs/config-hash.js';
import { redactSecrets, restoreRedactedSecrets } from '../../cloud-hub/configs/secret-redaction.js';
import { API_VERSION, REDACTED, type EdgeConfig } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
import { nodeUnit, processTemplate } from '../helpers/objects.js';

const config = (name: string, secretData?: Record<string, string>, data: Record<string, string> = { mode: 'fast' }): EdgeConfig => ({
  apiVersion: API_VERSION, kind: 'EdgeConfig', metadata: { name }, spec: { data, ...(secretData && { secretData }) },
});

test('redaction: every secret value is REDACTED, data and other kinds are untouched, the input is not changed', () => {
  const c = config('db', { password: 'pw', token: 'tk' });
  const r = redactSecrets(c);
  assert.deepEqual(r.spec.secretData, { password: REDACTED, token: REDACTED });
  assert.deepEqual(r.spec.data, { mode: 'fast' });
  assert.equal(c.spec.secretData?.password, 'pw');
  const unit = nodeUnit('site-a');
  assert.equal(redactSecrets(unit), unit);
  assert.equal(redactSecrets(config('plain')).spec.secretData, undefined);
});

test('apply of a read-back config: a REDACTED value keeps the stored one, real values replace', () => {
  const stored = config('db', { password: 'pw', token: 'tk' });
  const incoming = config('db', { password: REDACTED, token: 'new' });
  assert.deepEqual(restoreRedactedSecrets(incoming, stored).spec.secretData, { password: 'pw', token: 'new' });
  assert.equal(restoreRedactedSecrets(config('db', { a: 'x' }), undefined).spec.secretData?.a, 'x');
});

test('apply: a REDACTED value with nothing stored to keep is refused, naming the key', () => {
  const check = (fn: () => unknown) => assert.throws(fn, (e: unknown) => isOutpostError(e, 'INVALID') && /secretData "extra" is "<redacted>"/.test(e.message) && e.fields?.[0]?.path === '/spec/secretData/extra');
  check(() => restoreRedactedSecrets(config('db', { extra: REDACTED }), config('db', { password: 'pw' })));
  check(() => restoreRedactedSecrets(config('db', { extra: REDACTED }), undefined));
});

test('logs: an EdgeConfig logged whole, nested or in a list never shows its secret values', () => {
  let out = '';
  const dest = new Writable({ write(chunk: Buffer, _enc, cb) { out += chunk.toString(); cb(); } });
  const log = createLogger({ name: 'test', destination: dest });
  const c = config('db', { password: 'pw-in-log-1' });
  log.info({ object: c }, 'one');
  log.info(c, 'two');
  log.info({ frame: { objects: [c] } }, 'three');
  log.info({ spec: c.spec }, 'four');
  assert.match(out, /four/);
  assert.doesNotMatch(out, /pw-in-log-1/);
});

test('configsHash: stable, empty without configs, and it follows the data and secrets of the used configs only', () => {
  const t = processTemplate({ command: 'x', envFrom: [{ config: 'b' }], configMounts: [{ config: 'a' }] });
  const configs = new Map([['a', config('a', { k: '1' })], ['b', config('b')], ['c', config('c')]]);
  const h = configsHash(t, (n) => configs.get(n));
  assert.match(h, /^[0-9a-f]{12}$/);
  assert.equal(configsHash(t, (n) => structuredClone(configs.get(n))), h);
  assert.equal(configsHash(processTemplate({ command: 'x' }), (n) => configs.get(n)), '');
  configs.set('c', config('c', { k: 'changed' }));
  assert.equal(configsHash(t, (n) => configs.get(n)), h, 'an unused config does not count');
  configs.set('a', config('a', { k: '2' }));
  const h2 = configsHash(t, (n) => configs.get(n));
  assert.notEqual(h2, h, 'a secret change changes the hash');
  configs.delete('b');
  assert.notEqual(configsHash(t, (n) => configs.get(n)), h2, 'a missing config changes it too');
});
