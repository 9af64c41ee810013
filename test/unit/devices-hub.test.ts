// Hub side of devices (issue 5): model checks, twin merge, telemetry retention and dedupe, scrypt hashes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION, validateObject, type Device, type DeviceModel } from '../../shared/api/index.js';
import { desiredProblems, modelProblems, valueProblem } from '../../cloud-hub/devices/property-check.js';
import { mergePresence, mergeReport } from '../../cloud-hub/devices/twin-merge.js';
import { TelemetryStore, type TelemetryRow } from '../../cloud-hub/devices/telemetry-store.js';
import { hashPassword, verifyPassword } from '../../cloud-hub/devices/credentials.js';
import { verifyPassword as agentVerify } from '../../edge-agent/devices/password.js';
import { retentionOf } from '../../cloud-hub/devices/device-scope.js';
import { modelWarning } from '../../cloud-hub/devices/model-message.js';

const model: DeviceModel = {
  apiVersion: API_VERSION, kind: 'DeviceModel', metadata: { name: 'thermo' },
  spec: {
    properties: [
      { name: 'temperature', type: 'float', unit: '°C', access: 'ReadOnly' },
      { name: 'setpoint', type: 'float', minimum: 5, maximum: 30, access: 'ReadWrite' },
      { name: 'fan', type: 'int', minimum: 0, maximum: 3, access: 'ReadWrite' },
      { name: 'mode', type: 'enum', enum: ['eco', 'comfort'], access: 'ReadWrite' },
      { name: 'enabled', type: 'bool', access: 'ReadWrite' },
      { name: 'label', type: 'string', maxLength: 4, access: 'ReadWrite' },
    ],
  },
};
const device = (desired: Device['spec']['desired']): Device => ({ apiVersion: API_VERSION, kind: 'Device', metadata: { name: 't1' }, spec: { model: 'thermo', node: 'n1', ...(desired ? { desired } : {}) } });
const prop = (name: string) => model.spec.properties.find((p) => p.name === name)!;

describe('device model checks', () => {
  test('values are checked for type, enum, minimum, maximum and maxLength', () => {
    assert.equal(valueProblem(prop('setpoint'), 21.5), undefined);
    assert.equal(valueProblem(prop('setpoint'), 31)?.reason, 'out-of-range');
    assert.equal(valueProblem(prop('setpoint'), 4)?.reason, 'out-of-range');
    assert.equal(valueProblem(prop('setpoint'), 'hot')?.reason, 'wrong-type');
    assert.equal(valueProblem(prop('fan'), 1.5)?.reason, 'wrong-type');
    assert.equal(valueProblem(prop('mode'), 'turbo')?.reason, 'out-of-range');
    assert.equal(valueProblem(prop('mode'), 'eco'), undefined);
    assert.equal(valueProblem(prop('enabled'), 'true')?.reason, 'wrong-type');
    assert.equal(valueProblem(prop('label'), 'abcde')?.reason, 'out-of-range');
  });

  test('desired values name ReadWrite properties and fit them; paths name the property', () => {
    assert.deepEqual(desiredProblems(device({ setpoint: 20, mode: 'eco', enabled: true }), model), []);
    const problems = desiredProblems(device({ temperature: 20, nope: 1, setpoint: 99 }), model);
    assert.deepEqual(problems.map((p) => p.path), ['/spec/desired/temperature', '/spec/desired/nope', '/spec/desired/setpoint']);
    assert.match(problems[0]!.message, /ReadOnly/);
    assert.match(problems[1]!.message, /no property nope/);
    assert.match(problems[2]!.message, /<= 30/);
  });

  test('model rules: unique names, enum values, minimum <= maximum', () => {
    assert.deepEqual(modelProblems(model), []);
    const bad = structuredClone(model);
    bad.spec.properties.push({ name: 'fan', type: 'int', access: 'ReadOnly' }, { name: 'x', type: 'enum', access: 'ReadOnly' }, { name: 'y', type: 'int', minimum: 3, maximum: 1, access: 'ReadOnly' });
    assert.deepEqual(modelProblems(bad).map((p) => p.path), ['/spec/properties/6/name', '/spec/properties/7/enum', '/spec/properties/8/minimum']);
  });

  test('a Device needs exactly one of node and unit', () => {
    const both = { ...device(undefined), spec: { model: 'thermo', node: 'n1', unit: 'u1' } };
    const none = { ...device(undefined), spec: { model: 'thermo' } };
    for (const d of [both, none]) assert.throws(() => validateObject(d), (err: Error & { fields?: { path: string }[] }) => err.fields?.[0]?.path === '/spec');
    assert.doesNotThrow(() => validateObject({ ...device(undefined), spec: { model: 'thermo', unit: 'u1' } }));
  });

  test('the model warning: missing model, refused desired values, none', () => {
    assert.match(modelWarning(device({ setpoint: 20 }), undefined) ?? '', /not found/);
    assert.match(modelWarning(device({ setpoint: 50 }), model) ?? '', /\/spec\/desired\/setpoint/);
    assert.equal(modelWarning(device({ setpoint: 20 }), model), undefined);
  });
});

describe('twin merge', () => {
  const ctx = { node: 'n1', model, now: '2026-01-01T00:00:10.000Z' };
  test('per property the later report wins; others are kept; version and observedDesired recorded', () => {
    let s = mergeReport({}, { device: 't1', reported: { temperature: { value: 20, timestamp: '2026-01-01T00:00:01.000Z' }, fan: { value: 1, timestamp: '2026-01-01T00:00:01.000Z' } }, version: 1 }, ctx).status;
    s = mergeReport(s, { device: 't1', reported: { temperature: { value: 21, timestamp: '2026-01-01T00:00:02.000Z' } }, version: 2, observedDesired: 3 }, ctx).status;
    assert.deepEqual(s.reported, { temperature: { value: 21, timestamp: '2026-01-01T00:00:02.000Z', version: 2, node: 'n1' }, fan: { value: 1, timestamp: '2026-01-01T00:00:01.000Z', version: 1, node: 'n1' } });
    assert.equal(s.reportedVersion, 2);
    assert.equal(s.observedDesired, 3);
    assert.equal(s.node, 'n1');
    assert.equal(s.lastSeen, '2026-01-01T00:00:02.000Z');
  });

  test('a report with a lower version than reportedVersion is stale and changes no value', () => {
    const s = { reported: { temperature: { value: 21, timestamp: 't', version: 5 } }, reportedVersion: 5 };
    const r = mergeReport(s, { device: 't1', reported: { temperature: { value: 1, timestamp: 't' } }, version: 4 }, ctx);
    assert.equal(r.ignored, 'stale-version');
    assert.deepEqual([r.status.reported, r.status.reportedVersion], [s.reported, s.reportedVersion], 'only lastSeen moves');
    assert.equal(mergeReport(s, { device: 't1', reported: { temperature: { value: 22, timestamp: 't' } }, version: 5 }, ctx).status.reported?.temperature?.value, 22, 'the same version applies');
  });

  test('values the model refuses are dropped with their reason; the rest applies', () => {
    const r = mergeReport({}, { device: 't1', reported: { temperature: { value: 20, timestamp: 't' }, fan: { value: 9, timestamp: 't' }, ghost: { value: 1, timestamp: 't' } } }, ctx);
    assert.deepEqual(Object.keys(r.status.reported ?? {}), ['temperature']);
    assert.deepEqual(r.dropped, [{ property: 'fan', reason: 'out-of-range' }, { property: 'ghost', reason: 'unknown-property' }]);
  });

  test('presence sets online; lastSeen never goes back', () => {
    const s = mergePresence({ lastSeen: '2026-01-01T00:00:05.000Z' }, { device: 't1', online: false, at: '2026-01-01T00:00:03.000Z' }, 'n2');
    assert.deepEqual(s, { lastSeen: '2026-01-01T00:00:05.000Z', online: false, presenceAt: '2026-01-01T00:00:03.000Z', node: 'n2' });
    // An older presence report arriving later changes nothing but lastSeen.
    assert.equal(mergePresence(s, { device: 't1', online: true, at: '2026-01-01T00:00:02.000Z' }, 'n1').online, false);
  });

  test('two values of one node with the same version and time: the later report wins (its outbox order)', () => {
    const at = '2026-01-01T00:00:01.000Z';
    let s = mergeReport({}, { device: 't1', reported: { fan: { value: 3, timestamp: at } } }, ctx).status;
    s = mergeReport(s, { device: 't1', reported: { fan: { value: 1, timestamp: at } } }, ctx).status;
    assert.equal(s.reported?.fan?.value, 1);
  });

  test('the merge of reports from two nodes is the same in every arrival order', () => {
    const at = (sec: number) => `2026-01-01T00:00:0${sec}.000Z`;
    const reports: Array<[string, Parameters<typeof mergeReport>[1]]> = [
      ['n1', { device: 't1', reported: { temperature: { value: 20, timestamp: at(1) }, fan: { value: 1, timestamp: at(5) } } }],
      ['n2', { device: 't1', reported: { temperature: { value: 22, timestamp: at(2) }, fan: { value: 2, timestamp: at(5) } } }],
      ['n1', { device: 't1', reported: { setpoint: { value: 20, timestamp: at(1) } }, version: 7 }],
      ['n2', { device: 't1', reported: { setpoint: { value: 21, timestamp: at(9) } }, version: 6 }],
      ['n2', { device: 't1', reported: { mode: { value: 'eco', timestamp: at(3) } } }],
    ];
    const permutations = (xs: number[]): number[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x) => permutations(xs.filter((y) => y !== x)).map((p) => [x, ...p])));
    const results = permutations([0, 1, 2, 3, 4]).map((order) => JSON.stringify(order.reduce((st, i) => mergeReport(st, reports[i]![1], { ...ctx, node: reports[i]![0] }).status, {}), Object.keys({ reported: 0, temperature: 0, fan: 0, setpoint: 0, mode: 0, value: 0, version: 0, node: 0, timestamp: 0 })));
    assert.equal(new Set(results).size, 1, 'one result for all 120 orders');
    const merged = JSON.parse(results[0]!) as { reported: Record<string, { value: unknown }> };
    assert.deepEqual(Object.fromEntries(Object.entries(merged.reported).map(([k, v]) => [k, v.value])), { temperature: 22, fan: 2, setpoint: 20, mode: 'eco' });
  });
});

describe('telemetry store', () => {
  const withStore = (fn: (t: TelemetryStore) => void) => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-tel-'));
    const t = new TelemetryStore(join(dir, 'telemetry.db'));
    try { fn(t); } finally { t.close(); rmSync(dir, { recursive: true, force: true }); }
  };
  const row = (seq: number, timestamp: string, device = 'd1', node = 'n1'): TelemetryRow => ({ device, node, seq, timestamp, values: { v: seq } });
  const keepAll = () => ({ maxAgeMs: 1e12, maxCount: 1e6 });

  test('(node, seq) is stored once: a re-sent batch adds nothing', () => {
    withStore((t) => {
      const now = Date.now();
      const batch = [1, 2, 3].map((s) => row(s, new Date(now).toISOString()));
      assert.deepEqual(t.append(batch, keepAll, now), { stored: 3, duplicates: 0 });
      assert.deepEqual(t.append([...batch, row(4, new Date(now).toISOString())], keepAll, now), { stored: 1, duplicates: 3 });
      assert.deepEqual(t.append([row(1, new Date(now).toISOString(), 'd1', 'n2')], keepAll, now), { stored: 1, duplicates: 0 }, 'another node\'s seq 1 is another row');
      assert.deepEqual(t.append([{ ...row(2, new Date(now).toISOString()), origin: 'uid-of-rejoined-n1' }], keepAll, now), { stored: 1, duplicates: 0 }, 'a node joined again starts a new outbox');
      assert.deepEqual(t.list('d1').map((r) => r.values.v), [1, 2, 3, 4, 1, 2]);
    });
  });

  test('retention by count keeps the newest rows of that device only', () => {
    withStore((t) => {
      const now = Date.now();
      const ts = new Date(now).toISOString();
      t.append(Array.from({ length: 20 }, (_, i) => row(i + 1, ts)), () => ({ maxAgeMs: 1e12, maxCount: 5 }), now);
      t.append([row(100, ts, 'd2')], keepAll, now);
      assert.deepEqual(t.list('d1').map((r) => r.seq), [16, 17, 18, 19, 20]);
      assert.equal(t.count('d2'), 1);
    });
  });

  test('retention by age removes rows older than maxAge; since and limit filter reads', () => {
    withStore((t) => {
      const now = Date.now();
      t.append([row(1, new Date(now - 120_000).toISOString()), row(2, new Date(now - 30_000).toISOString()), row(3, new Date(now - 1000).toISOString())], () => ({ maxAgeMs: 60_000, maxCount: 100 }), now);
      assert.deepEqual(t.list('d1').map((r) => r.seq), [2, 3]);
      assert.deepEqual(t.list('d1', { sinceMs: now - 10_000 }).map((r) => r.seq), [3]);
      assert.deepEqual(t.list('d1', { limit: 1 }).map((r) => r.seq), [3], 'limit keeps the newest');
      const [first] = t.list('d1');
      assert.deepEqual(t.list('d1', { afterId: first!.id }).map((r) => r.seq), [3], 'follow reads forward from an id');
    });
  });

  test('a device\'s retention defaults to 24h and 10 000 rows and follows its spec', () => {
    assert.deepEqual(retentionOf(undefined), { maxAgeMs: 86_400_000, maxCount: 10_000 });
    const d = { ...device(undefined), spec: { model: 'm', node: 'n', telemetryRetention: { maxAge: '10m', maxCount: 7 } } };
    assert.deepEqual(retentionOf(d), { maxAgeMs: 600_000, maxCount: 7 });
  });
});

describe('device credentials', () => {
  test('scrypt hash carries its parameters and verifies only the right password', async () => {
    const hash = await hashPassword('s3cret');
    assert.match(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.equal(await verifyPassword('s3cret', hash), true);
    assert.equal(await verifyPassword('s3cret!', hash), false);
    assert.equal(await verifyPassword('s3cret', 'scrypt$bad'), false);
    assert.notEqual(await hashPassword('s3cret'), hash, 'salted');
    assert.equal(await verifyPassword('s3cret', 'scrypt$1099511627776$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), false, 'absurd cost refused');
    assert.equal(await agentVerify('s3cret', hash), true, 'the agent verifies what the hub hashes');
  });
});
