// The hub's global registry view (issue 6) on a real SQLite file: per-unit keys, the supersedes
// rule in any arrival order, digests kept current, removal, tombstones forgotten, reopening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GlobalRegistryView } from '../../cloud-hub/registry/global-view.js';
import { originDigests } from '../../shared/registry/digest.js';
import type { RegistryRecord } from '../../shared/registry/records.js';

const rec = (origin: string, unit: string, id: string, v: [number, number], health: 'passing' | 'critical' = 'passing'): RegistryRecord => ({
  key: `web/${id}`, origin, version: { incarnation: v[0], counter: v[1] },
  instance: { service: 'web', id, node: origin, unit, address: '10.0.0.1', port: 80, protocol: 'tcp', metadata: {}, weight: 100, health, lease: { kind: 'ttl', ttlMs: 1000 } },
});
const tomb = (origin: string, id: string, v: [number, number]): RegistryRecord => ({ key: `web/${id}`, origin, version: { incarnation: v[0], counter: v[1] } });

test('global view: order-free merge, per-unit keys, digests, removal, tombstones and reopening', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-global-view-'));
  let now = 1_000;
  try {
    const path = join(dir, 'registry.db');
    let view = new GlobalRegistryView({ path, now: () => now });
    const history = [rec('a1', 'u1', 'x', [1, 1]), rec('a1', 'u1', 'x', [1, 2], 'critical'), rec('a1', 'u1', 'x', [2, 1]), tomb('a1', 'y', [2, 3]), rec('a1', 'u1', 'y', [2, 2])];
    // Every arrival order ends in the same view.
    for (const order of [history, [...history].reverse(), [history[2]!, history[0]!, history[4]!, history[3]!, history[1]!]]) {
      const v = new GlobalRegistryView({ path: join(dir, `order-${Math.random()}.db`), now: () => now });
      v.merge('u1', order);
      assert.deepEqual(v.instances('web').map((i) => [i.id, i.version.incarnation, i.version.counter]), [['x', 2, 1]]);
      v.close();
    }
    assert.equal(view.merge('u1', history).length, 4, 'y arrives after its tombstone: not taken');
    assert.deepEqual(view.merge('u1', history), [], 'a re-sent report changes nothing');
    // Same key in another unit is another record.
    view.merge('u2', [rec('b1', 'u2', 'x', [1, 1])]);
    assert.deepEqual(view.instances('web').map((i) => `${i.unit}/${i.id}`), ['u1/x', 'u2/x']);
    assert.deepEqual(view.instances('web', { exceptUnit: 'u1' }).map((i) => i.unit), ['u2']);
    assert.deepEqual(view.services(), [{ service: 'web', units: ['u1', 'u2'], healthy: 2, total: 2 }]);

    const before = view.digests('u1');
    assert.deepEqual(before, originDigests([rec('a1', 'u1', 'x', [2, 1])]));
    view.merge('u1', [rec('a1', 'u1', 'x', [2, 2])]);
    assert.notDeepEqual(view.digests('u1'), before, 'a merge refreshes the unit digest');

    assert.equal(view.removeWhere((u) => u === 'u2'), 1);
    assert.deepEqual(view.size(), { records: 2, instances: 1, services: 1 });

    now += 10_000;
    assert.equal(view.forgetTombstones(20_000), 0, 'young tombstones stay');
    view.close();
    view = new GlobalRegistryView({ path, now: () => now });
    assert.deepEqual(view.size(), { records: 2, instances: 1, services: 1 }, 'reopened from the file');
    now += 20_000;
    assert.equal(view.forgetTombstones(20_000), 1);
    assert.deepEqual(view.size(), { records: 1, instances: 1, services: 1 });
    view.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
