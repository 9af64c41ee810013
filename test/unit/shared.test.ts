import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateObject } from '../../shared/api/index.js';
import { Backoff } from '../../shared/backoff.js';
import { parseDuration } from '../../shared/duration.js';
import { isOutpostError } from '../../shared/errors.js';
import { parseAgentFrame } from '../../shared/protocol/frames.js';
import { parseManifests } from '../../shared/yaml.js';
import { edgeApp } from '../helpers/objects.js';

test('validation names every failing field path', () => {
  const bad = edgeApp('x') as unknown as { spec: Record<string, unknown>; metadata: Record<string, unknown> };
  bad.spec.replicasPerUnit = 'two';
  bad.metadata.name = 'Not_A_Name';
  assert.throws(() => validateObject(bad), (e) => {
    assert.ok(isOutpostError(e, 'INVALID'));
    const paths = e.fields?.map((f) => f.path) ?? [];
    assert.ok(paths.includes('/spec/replicasPerUnit'), paths.join());
    assert.ok(paths.includes('/metadata/name'), paths.join());
    return true;
  });
  assert.throws(() => validateObject({ ...edgeApp('x'), apiVersion: 'v1' }), (e) => isOutpostError(e, 'INVALID') && e.fields?.[0]?.path === '/apiVersion');
  assert.throws(() => validateObject({ ...edgeApp('x'), kind: 'Pod' }), (e) => isOutpostError(e, 'UNKNOWN_KIND') && /Pod/.test(e.message));
  assert.throws(() => validateObject([1]), (e) => isOutpostError(e, 'BAD_REQUEST'));
  const badKeys = edgeApp('x', { labels: { 'bad key!': 'v' }, template: { command: 'sh', env: { '1BAD': 'x' }, restartPolicy: 'Sometimes' as never } });
  assert.throws(() => validateObject(badKeys), (e) => {
    const byPath = Object.fromEntries((isOutpostError(e) ? e.fields ?? [] : []).map((f) => [f.path, f.message]));
    assert.ok(byPath['/metadata/labels/bad key!'], JSON.stringify(byPath));
    assert.ok(byPath['/spec/template/processes/0/env/1BAD'], JSON.stringify(byPath));
    assert.equal(byPath['/spec/template/restartPolicy'], 'expected one of: Always, OnFailure, Never');
    return true;
  });
  assert.equal(validateObject(edgeApp('ok')).metadata.name, 'ok');
});

test('YAML: multi-document, List flattening, errors with document and line', () => {
  const docs = parseManifests('a: 1\n---\n---\nkind: List\nitems: [{b: 2}, {c: 3}]\n');
  assert.deepEqual(docs, [{ a: 1 }, { b: 2 }, { c: 3 }]);
  assert.throws(() => parseManifests('a: 1\n---\nb: [1, 2\nc: 3\n', 'f.yaml'), (e) => isOutpostError(e, 'INVALID_YAML') && /f\.yaml: document 2 line \d+/.test(e.message));
  assert.throws(() => parseManifests('a: 1\na: 2\n'), (e) => isOutpostError(e, 'INVALID_YAML'));
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
  assert.throws(() => parseManifests(bomb), (e) => isOutpostError(e, 'INVALID_YAML'), 'alias expansion is bounded');
});

test('agent frames: garbage is refused with a reason, valid frames pass', () => {
  const bad = ['nope', '[]', '{"type":"hello"}', '{"type":"ack","revision":-1}', '{"type":"report","items":[]}', '{"type":"ack","revision":1,"extra":true}'];
  for (const b of bad) assert.throws(() => parseAgentFrame(b), (e) => isOutpostError(e, 'PROTOCOL'), b);
  assert.deepEqual(parseAgentFrame('{"type":"ack","revision":7}'), { type: 'ack', revision: 7 });
});

test('backoff: full jitter under an exponential ceiling that stops at the cap', () => {
  const ceilings: number[] = [];
  const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
  for (let i = 0; i < 8; i++) ceilings.push(b.next());
  assert.deepEqual(ceilings, [99, 199, 399, 799, 999, 999, 999, 999]);
  const zero = new Backoff({ random: () => 0 });
  assert.equal(zero.next(), 0, 'full jitter can retry at once');
  b.reset();
  assert.equal(b.next(), 99);
});

test('durations', () => {
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.throws(() => parseDuration('10 minutes'), (e) => isOutpostError(e, 'BAD_REQUEST') && /10 minutes/.test(e.message));
  assert.throws(() => parseDuration(''), (e) => isOutpostError(e, 'BAD_REQUEST'));
});

test('--listen accepts HOST:PORT, :PORT, PORT and [v6]:PORT', async () => {
  const { parseListen } = await import('../../cli/commands/processes.js');
  assert.deepEqual(parseListen('0.0.0.0:7400', '127.0.0.1'), { host: '0.0.0.0', port: 7400 });
  assert.deepEqual(parseListen(':7400', '127.0.0.1'), { host: '127.0.0.1', port: 7400 });
  assert.deepEqual(parseListen('17403', '127.0.0.1'), { host: '127.0.0.1', port: 17403 });
  assert.deepEqual(parseListen('[::1]:80', '127.0.0.1'), { host: '::1', port: 80 });
  assert.throws(() => parseListen('host:99999', '127.0.0.1'), (e) => isOutpostError(e, 'BAD_REQUEST'));
  assert.throws(() => parseListen('nonsense', '127.0.0.1'), (e) => isOutpostError(e, 'BAD_REQUEST'));
});
