// Issue 7 hub fixes: status writes batched in one transaction, and deepEqual without serializing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson, deepEqual } from '../../shared/hash.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import type { WatchEvent } from '../../cloud-hub/store/store.js';

test('deepEqual agrees with canonical JSON equality', () => {
  const cases: [unknown, unknown][] = [
    [{ a: 1, b: 2 }, { b: 2, a: 1 }], [{ a: undefined }, {}], [[1, undefined], [1, null]], [NaN, null], [{ a: [1, { x: 1 }] }, { a: [1, { x: 2 }] }],
    [undefined, undefined], [undefined, null], [{}, []], [new Date(0), '1970-01-01T00:00:00.000Z'], [1, '1'], [{ a: 1 }, { a: 1, b: null }],
    [undefined, {}], [{ d: new Date(5) }, { d: new Date(6) }], [{ a: { b: { c: [1, 2] } } }, { a: { b: { c: [2, 1] } } }], [[], []], ['', 0], [false, 0],
    [{ n: null }, {}], [{ f: () => 1 }, {}], [Object.create(null) as object, {}], [[{ a: 1 }], [{ a: 1, z: undefined }]],
  ];
  for (const [a, b] of cases) assert.equal(deepEqual(a, b), canonicalJson(a) === canonicalJson(b), `${String(canonicalJson(a))} vs ${String(canonicalJson(b))}`);
});

test('updateStatuses writes many statuses in one transaction; a refused item fails alone', async () => {
  const store = SqliteStore.open({ path: ':memory:' });
  try {
    for (const n of ['a', 'b']) await store.create({ apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeNode', metadata: { name: n }, spec: { unit: 'u' } });
    const before = await store.currentRevision();
    const events: WatchEvent[] = [];
    const w = await store.watch({ fromRevision: before }, (e) => events.push(e));
    const results = await store.updateStatuses('EdgeNode', [
      { name: 'a', status: { phase: 'Ready' } },
      { name: 'missing', status: { phase: 'Ready' } },
      { name: 'b', status: { phase: 'Bogus' } },
      { name: 'b', status: { phase: 'Disconnected' } },
    ]);
    assert.equal((results[0] as { status: { phase: string } }).status.phase, 'Ready');
    assert.ok(results[1] instanceof Error && /not found/.test(results[1].message));
    assert.ok(results[2] instanceof Error, 'an invalid status is refused');
    assert.equal((results[3] as { status: { phase: string } }).status.phase, 'Disconnected');
    assert.equal(await store.currentRevision(), before + 2, 'refused items take no revision');
    assert.deepEqual(events.map((e) => [e.object.metadata.name, e.revision]), [['a', before + 1], ['b', before + 2]]);
    assert.equal(((await store.get('EdgeNode', 'b'))?.status as { phase: string }).phase, 'Disconnected');
    w.stop();
  } finally {
    await store.close();
  }
});
