import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { DeviceModel } from '../../shared/api/device.js';
import { Outbox } from '../../edge-agent/cache/outbox.js';
import { clientIdAllowed, clientIdOwner, maySubscribe, publishKind } from '../../edge-agent/devices/access.js';
import { mergeReport } from '../../edge-agent/devices/device-messages.js';
import { parseReport, parseTelemetry } from '../../edge-agent/devices/payloads.js';
import { hashPassword, verifyPassword } from '../../edge-agent/devices/password.js';

const model = {
  apiVersion: 'outpost.dev/v1alpha1', kind: 'DeviceModel', metadata: { name: 'm' },
  spec: { properties: [
    { name: 'n', type: 'int', minimum: 0, maximum: 10, access: 'ReadOnly' },
    { name: 'on', type: 'bool', access: 'ReadWrite' },
    { name: 'e', type: 'enum', enum: ['a', 'b'], access: 'ReadWrite' },
  ] },
} as DeviceModel;
const buf = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

test('devices: telemetry and reports are checked against the model, naming what is wrong', () => {
  const now = Date.UTC(2026, 0, 1);
  const ok = parseTelemetry(model, buf({ n: 3, on: true }), now);
  assert.deepEqual(ok, { ok: true, value: { timestamp: '2026-01-01T00:00:00.000Z', values: { n: 3, on: true } } });
  const cases: Array<[unknown, string]> = [
    ['{', 'not-json'], [[1], 'not-json'], [{ x: 1 }, 'unknown-property'], [{ n: 1.5 }, 'wrong-type'], [{ n: '1' }, 'wrong-type'],
    [{ n: 11 }, 'out-of-range'], [{ e: 'c' }, 'out-of-range'], [{ on: 1 }, 'wrong-type'], [{ ts: 'yesterday' }, 'wrong-type'], ['x'.repeat(70_000), 'too-large'],
  ];
  for (const [payload, reason] of cases) {
    const r = parseTelemetry(model, buf(payload), now);
    assert.equal(r.ok, false, JSON.stringify(payload).slice(0, 40));
    if (!r.ok) assert.equal(r.reason, reason);
  }
  assert.deepEqual(parseReport(model, buf({ values: { e: 'b' }, version: 7, observedDesired: 2, ts: '2025-12-31T00:00:00Z' }), now), {
    ok: true, value: { timestamp: '2025-12-31T00:00:00.000Z', values: { e: 'b' }, version: 7, observedDesired: 2 },
  });
  // A time ahead of the agent's clock by more than the skew allowed would win every later merge at the hub.
  assert.equal(parseReport(model, buf({ values: { e: 'b' }, ts: now + 4 * 60_000 }), now).ok, true);
  const ahead = parseReport(model, buf({ values: { e: 'b' }, ts: '2026-01-02T00:00:00Z' }), now);
  assert.ok(!ahead.ok && ahead.reason === 'out-of-range' && ahead.error.includes('ahead'));
  assert.equal(parseTelemetry(model, buf({ n: 1, ts: now + 3_600_000 }), now).ok, false);
  const bad = parseReport(model, buf({ values: { n: 1 }, extra: 1 }), now);
  assert.ok(!bad.ok && bad.reason === 'unknown-property' && bad.error.includes('extra'));
  const neg = parseReport(model, buf({ version: -1 }), now);
  assert.ok(!neg.ok && neg.reason === 'wrong-type');
});

test('devices: access rules keep each device to its own topics', () => {
  assert.equal(publishKind('a', 'outpost/v1/devices/a/telemetry'), 'telemetry');
  assert.equal(publishKind('a', 'outpost/v1/devices/b/telemetry'), undefined);
  assert.equal(publishKind('a', 'outpost/v1/devices/a/twin/desired'), undefined);
  assert.equal(maySubscribe('a', 'outpost/v1/devices/a/twin/desired'), true);
  assert.equal(maySubscribe('a', 'outpost/v1/devices/+/twin/desired'), false);
  assert.equal(maySubscribe('a', 'outpost/v1/devices/a/#'), false);
  assert.equal(clientIdAllowed('a', 'a-1'), true);
  assert.equal(clientIdAllowed('a', 'ab'), false);
  const devices = new Set(['cam', 'cam-2']);
  const isDevice = (n: string) => devices.has(n);
  assert.deepEqual(['cam', 'cam-x', 'cam-2', 'cam-2-x', 'cam-2x', 'other', '-cam'].map((id) => clientIdOwner(id, isDevice)), ['cam', 'cam', 'cam-2', 'cam-2', 'cam', undefined, undefined]);
});

test('devices: scrypt hashes verify, and a wrong password or malformed hash does not', async () => {
  const h = await hashPassword('s3cret', 1024);
  assert.equal(await verifyPassword('s3cret', h), true);
  assert.equal(await verifyPassword('s3cret!', h), false);
  assert.equal(await verifyPassword('s3cret', 'scrypt$x$8$1$aa$bb'), false);
  assert.equal(await verifyPassword('s3cret', 'bcrypt$...'), false);
});

test('devices: queued reports merge per property, newest wins, version only grows', () => {
  const a = mergeReport(undefined, { device: 'd', reported: { x: { value: 1, timestamp: 't1' }, y: { value: 1, timestamp: 't1' } }, version: 3 });
  const b = mergeReport(a, { device: 'd', reported: { x: { value: 2, timestamp: 't2' } }, observedDesired: 5 });
  assert.deepEqual(b, { device: 'd', reported: { x: { value: 2, timestamp: 't2' }, y: { value: 1, timestamp: 't1' } }, version: 3, observedDesired: 5 });
});

test('outbox: a batch put is one ordered write; the telemetry budget drops oldest first and counts it', () => {
  let now = 1_000;
  const outbox = new Outbox(new Database(':memory:'), { maxTelemetry: 5, maxTelemetryAgeMs: 10_000, now: () => now });
  const t = (i: number) => ({ kind: 'telemetry' as const, body: { device: 'd', timestamp: 'x', values: { i } } });
  outbox.putBatch([t(1), t(2), { kind: 'device-presence', key: 'device-presence/d', body: { device: 'd', online: true, at: 'x' } }, t(3)]);
  outbox.putBatch([4, 5, 6, 7].map(t));
  const values = () => outbox.batch(100).filter((r) => r.kind === 'telemetry').map((r) => (r.body as { values: Record<string, number> }).values.i);
  assert.deepEqual(values(), [3, 4, 5, 6, 7]);
  assert.equal(outbox.droppedTelemetry(), 2);
  assert.equal(outbox.telemetryQueued().rows, 5);
  // Statuses are never dropped by the telemetry budget.
  assert.equal(outbox.batch(100).filter((r) => r.kind === 'device-presence').length, 1);
  // Acked rows leave the budget's count; expired rows are dropped and counted.
  const seqOf5 = outbox.batch(100).filter((r) => r.kind === 'telemetry')[2]!.seq;
  outbox.ack(seqOf5);
  assert.deepEqual(values(), [6, 7]);
  assert.equal(outbox.telemetryQueued().rows, 2);
  now += 20_000;
  assert.equal(outbox.dropExpired(), 2);
  assert.equal(outbox.droppedTelemetry(), 4);
  assert.deepEqual(outbox.telemetryQueued(), { rows: 0, bytes: 0 });
  // A keyed merge combines with the queued row of the same key.
  outbox.putBatch([{ kind: 'device-report', key: 'r/d', body: undefined, merge: (q) => ({ n: ((q as { n?: number } | undefined)?.n ?? 0) + 1 }) }]);
  outbox.putBatch([{ kind: 'device-report', key: 'r/d', body: undefined, merge: (q) => ({ n: ((q as { n?: number } | undefined)?.n ?? 0) + 1 }) }]);
  assert.deepEqual(outbox.batch(100).filter((r) => r.kind === 'device-report').map((r) => r.body), [{ n: 2 }]);
});
