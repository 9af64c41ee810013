// A device status write that fails for a reason a retry can fix must not be acknowledged (issue 5:
// nothing accepted by an agent is lost); one that can never succeed is logged and acknowledged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { API_VERSION, type AnyObject } from '../../shared/api/index.js';
import { OutpostError, type ErrorName } from '../../shared/errors.js';
import { silentLogger } from '../../shared/logger.js';
import { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { DeviceReports } from '../../cloud-hub/devices/device-reports.js';
import { createDeviceMetrics } from '../../cloud-hub/devices/device-metrics.js';
import { TelemetryStore } from '../../cloud-hub/devices/telemetry-store.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import type { Store } from '../../cloud-hub/store/store.js';

const model = { apiVersion: API_VERSION, kind: 'DeviceModel', metadata: { name: 'thermo' }, spec: { properties: [{ name: 'setpoint', type: 'float', access: 'ReadWrite' }] } } as AnyObject;
const device = { apiVersion: API_VERSION, kind: 'Device', metadata: { name: 't1' }, spec: { model: 'thermo', node: 'n1' } } as AnyObject;
const report = { kind: 'device-report' as const, seq: 1, body: { device: 't1', reported: { setpoint: { value: 21, timestamp: '2026-01-01T00:00:00.000Z' } } } };

async function reportsFailingWith(name: ErrorName) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-report-errors-'));
  const real = SqliteStore.open({ path: join(dir, 'store.db') });
  await real.create(model);
  await real.create(device);
  let writes = 0;
  const store = new Proxy(real, {
    get(target, key, receiver) {
      if (key === 'updateStatus') return () => { writes++; return Promise.reject(new OutpostError(name, `status write failed (${name})`)); };
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Store;
  const cache = new ObjectCache({ store, log: silentLogger() });
  await cache.start();
  const telemetry = new TelemetryStore(join(dir, 'telemetry.db'));
  const reports = new DeviceReports({ store, cache, telemetry, metrics: createDeviceMetrics(new Registry(), () => 0), log: silentLogger() });
  const close = async () => { await cache.stop(); telemetry.close(); await real.close(); rmSync(dir, { recursive: true, force: true }); };
  return { reports, writes: () => writes, close };
}

for (const name of ['CONFLICT', 'UNAVAILABLE'] as const) {
  test(`device reports: a status write failing with ${name} is not acknowledged (the agent re-sends)`, async () => {
    const env = await reportsFailingWith(name);
    try {
      await assert.rejects(env.reports.handle({ node: 'n1', unit: 'u1' }, [report]), (err) => err instanceof OutpostError && err.code === `OUTPOST_${name}`);
      assert.ok(env.writes() >= 1);
    } finally {
      await env.close();
    }
  });
}

test('device reports: a status the store refuses as invalid is acknowledged (re-sending could never store it)', async () => {
  const env = await reportsFailingWith('INVALID');
  try {
    assert.deepEqual(await env.reports.handle({ node: 'n1', unit: 'u1' }, [report]), { rejected: [] });
    assert.equal(env.writes(), 1);
  } finally {
    await env.close();
  }
});
