import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { IClientOptions } from 'mqtt';
import { topics } from '../../shared/devices/topics.js';
import { badPayloads, collect, connectMqtt as connectAs, credential, device, outboxRows as rows, refusedWith, startBroker, thermostatModel as model, within } from '../helpers/device-broker.js';

const repo = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'outpost-devices-'));
let revision = 1;

after(() => rmSync(dir, { recursive: true, force: true }));

/** CONNACK refusals as mqtt.js reports them (error.code): MQTT 3.1.1 return codes, MQTT 5 reason codes. */
const REFUSED = {
  4: { badCredentials: 4, notAuthorized: 5, clientId: 2 },
  5: { badCredentials: 0x86, notAuthorized: 0x87, clientId: 0x85 },
} as const;

// The same behaviour for MQTT 3.1.1 clients (aedes itself) and MQTT 5 clients (through the adapter).
for (const protocolVersion of [4, 5] as const) describe(`devices over MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}`, () => {
  const codes = REFUSED[protocolVersion];
  const connect = (url: string, options: IClientOptions) => connectAs(url, { protocolVersion, ...options });
  let env: Awaited<ReturnType<typeof startBroker>>;
  before(async () => {
    env = await startBroker(join(dir, `cache-v${protocolVersion}.db`), [
      model, device('t1', 3, { setpoint: 21 }), device('t2', 1), device('elsewhere', 1, {}, { node: 'n9' }), device('unit-dev', 1, {}, { unit: 'site-a' }),
      await credential('t1', 'pw-1'), await credential('t2', 'pw-2'), await credential('elsewhere', 'pw-9'), await credential('unit-dev', 'pw-u'),
    ]);
  });
  after(async () => {
    await env.broker.stop();
    env.db.close();
  });

  test('devices: wrong password, anonymous client and a device bound elsewhere are refused', async () => {
    await assert.rejects(connect(env.url, { clientId: 't1', username: 't1-user', password: 'wrong' }), refusedWith(codes.badCredentials));
    await assert.rejects(connect(env.url, { clientId: 't1' }), refusedWith(codes.notAuthorized));
    await assert.rejects(connect(env.url, { clientId: 'elsewhere', username: 'elsewhere-user', password: 'pw-9' }), refusedWith(codes.notAuthorized));
    await assert.rejects(connect(env.url, { clientId: 't2', username: 't1-user', password: 'pw-1' }), refusedWith(codes.clientId));
    const ok = await connect(env.url, { clientId: 't1-a', username: 't1-user', password: 'pw-1' });
    await ok.endAsync();
    const metrics = await env.registry.getSingleMetricAsString('outpost_agent_mqtt_rejected_total');
    assert.match(metrics, /reason="bad-credentials"} 1/);
    assert.match(metrics, /reason="anonymous"} 1/);
    assert.match(metrics, /reason="not-bound"} 1/);
  });

  test('devices: the desired twin is published retained with its version, and again when the cache changes', async () => {
    const c = await connect(env.url, { clientId: 't1', username: 't1-user', password: 'pw-1' });
    const first = collect(c, topics.desired('t1'), 1);
    await c.subscribeAsync(topics.desired('t1'), { qos: 1 });
    assert.deepEqual(await first, [{ version: 3, values: { setpoint: 21 } }]);
    const next = collect(c, topics.desired('t1'), 1);
    env.cache.apply({ type: 'sync', revision: ++revision, objects: [device('t1', 4, { setpoint: 22, mode: 'off' })], deletes: [] });
    env.broker.refresh();
    assert.deepEqual(await next, [{ version: 4, values: { setpoint: 22, mode: 'off' } }]);
    await c.endAsync();
  });

  test('devices: a device cannot read another device\'s twin nor publish on its telemetry topic', async () => {
    const t2 = await connect(env.url, { clientId: 't2', username: 't2-user', password: 'pw-2' });
    // mqtt.js turns a SUBACK failure (128) into a rejected subscribe.
    await assert.rejects(t2.subscribeAsync(topics.desired('t1'), { qos: 1 }), /Subscribe error/);
    await assert.rejects(t2.subscribeAsync('outpost/v1/devices/#', { qos: 1 }), /Subscribe error/);
    assert.deepEqual((await t2.subscribeAsync(topics.desired('t2'), { qos: 1 })).map((g) => g.qos), [1]);
    const before = rows(env.outbox, 'telemetry').length;
    if (protocolVersion === 5) {
      // MQTT 5 refuses the one publish (PUBACK 0x87) and the device stays connected.
      const errors = collect(t2, topics.errors('t2'), 1);
      await t2.subscribeAsync(topics.errors('t2'), { qos: 1 });
      await assert.rejects(t2.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: 20 }), { qos: 1 }), refusedWith(0x87));
      assert.equal(((await errors)[0] as { reason: string }).reason, 'not-allowed');
      await t2.publishAsync(topics.get('t2'), '', { qos: 1 }); // still connected and served
      assert.equal(rows(env.outbox, 'telemetry').length, before);
      await t2.endAsync();
      return;
    }
    const closed = new Promise<void>((resolve) => t2.once('close', () => resolve()));
    t2.publish(topics.telemetry('t1'), JSON.stringify({ temperature: 20 }), { qos: 1 });
    await within(closed, 5_000, 'the broker closes the connection');
    t2.end(true);
    assert.equal(rows(env.outbox, 'telemetry').length, before);
  });

  test('devices: each kind of bad payload gets an errors-topic message and the broker keeps serving', async () => {
    const c = await connect(env.url, { clientId: 't2', username: 't2-user', password: 'pw-2' });
    await c.subscribeAsync(topics.errors('t2'), { qos: 1 });
    const bad = badPayloads('t2');
    const errors = collect(c, topics.errors('t2'), bad.filter((b) => b[2]).length);
    for (const [topic, payload] of bad) await c.publishAsync(topic, payload, { qos: 1 });
    const got = (await errors) as Array<{ reason: string; error: string; topic: string }>;
    assert.deepEqual(got.map((e) => e.reason), bad.filter((b) => b[2]).map((b) => b[2]));
    assert.ok(got.every((e) => e.error.length > 0));
    // Still serving: the same device, and another one.
    await c.publishAsync(topics.telemetry('t2'), JSON.stringify({ temperature: 21.5, ts: 1_700_000_000_000 }), { qos: 1 });
    const t1 = await connect(env.url, { clientId: 't1', username: 't1-user', password: 'pw-1' });
    await t1.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: 1 }), { qos: 0 });
    await t1.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: 2 }), { qos: 1 });
    const telemetry = rows(env.outbox, 'telemetry').map((r) => r.body as { device: string; values: Record<string, number>; timestamp: string });
    assert.deepEqual(telemetry.filter((t) => t.device === 't2').map((t) => [t.values.temperature, t.timestamp]), [[21.5, new Date(1_700_000_000_000).toISOString()]]);
    assert.deepEqual(telemetry.filter((t) => t.device === 't1').map((t) => t.values.temperature), [1, 2]);
    const metrics = await env.registry.getSingleMetricAsString('outpost_agent_mqtt_rejected_total');
    for (const reason of ['not-json', 'unknown-property', 'wrong-type', 'out-of-range', 'too-large', 'stale-version']) assert.match(metrics, new RegExp(`reason="${reason}"`));
    await c.endAsync();
    await t1.endAsync();
  });

  test('devices: reported values are validated, coalesced per device, and answered by twin/get', async () => {
    // A device bound to this node's unit (not the node) is at home here too.
    const u = await connect(env.url, { clientId: 'unit-dev', username: 'unit-dev-user', password: 'pw-u' });
    await u.publishAsync(topics.reported('unit-dev'), JSON.stringify({ values: { label: 'ok' } }), { qos: 1 });
    await u.endAsync();
    const t1 = await connect(env.url, { clientId: 't1', username: 't1-user', password: 'pw-1' });
    await t1.publishAsync(topics.reported('t1'), JSON.stringify({ values: { temperature: 20, mode: 'heat' }, version: 1 }), { qos: 1 });
    await t1.publishAsync(topics.reported('t1'), JSON.stringify({ values: { temperature: 21 }, version: 2, observedDesired: 4 }), { qos: 1 });
    const reports = rows(env.outbox, 'device-report').map((r) => r.body as { device: string; reported: Record<string, { value: unknown }>; version?: number; observedDesired?: number });
    assert.ok(reports.some((r) => r.device === 'unit-dev'));
    const mine = reports.filter((r) => r.device === 't1');
    assert.equal(mine.length, 1);
    assert.deepEqual(Object.fromEntries(Object.entries(mine[0]!.reported).map(([k, v]) => [k, v.value])), { temperature: 21, mode: 'heat' });
    assert.equal(mine[0]!.version, 2);
    assert.equal(mine[0]!.observedDesired, 4);
    await t1.subscribeAsync(topics.getResponse('t1'), { qos: 1 });
    const response = collect(t1, topics.getResponse('t1'), 1);
    await t1.publishAsync(topics.get('t1'), '', { qos: 1 });
    assert.deepEqual(await response, [{ desired: { version: 4, values: { setpoint: 22, mode: 'off' } }, reported: { temperature: 21, mode: 'heat' } }]);
    await t1.endAsync();
  });

  test('devices: presence rows follow connect and disconnect; MQTT over WebSocket works', async () => {
    const ws = `ws://127.0.0.1:${env.broker.addresses().ws!.port}`;
    const c = await connect(ws, { clientId: 't2', username: 't2-user', password: 'pw-2' });
    const presence = () => rows(env.outbox, 'device-presence').map((r) => r.body as { device: string; online: boolean }).find((p) => p.device === 't2');
    for (let i = 0; i < 100 && presence()?.online !== true; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(presence()?.online, true);
    await c.endAsync();
    for (let i = 0; i < 100 && presence()?.online !== false; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(presence()?.online, false);
  });

  test('devices: a device deleted from the cache loses its connection and cannot log in again', async () => {
    const c = await connect(env.url, { clientId: 't2', username: 't2-user', password: 'pw-2' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    env.cache.apply({ type: 'sync', revision: ++revision, objects: [], deletes: [{ kind: 'Device', name: 't2' }] });
    env.broker.refresh();
    await within(closed, 5_000, 'the broker closes the connection');
    c.end(true);
    await assert.rejects(connect(env.url, { clientId: 't2', username: 't2-user', password: 'pw-2' }), refusedWith(codes.notAuthorized));
  });

  test('devices: a QoS 1 PUBACK means the telemetry row is on disk (agent SIGKILLed right after)', async () => {
    const file = join(dir, `child-v${protocolVersion}.db`);
    const objects = [model, device('t1', 1), await credential('t1', 'pw-1')];
    writeFileSync(join(dir, 'objects.json'), JSON.stringify(objects));
    const script = join(dir, 'child.mts');
    writeFileSync(script, `
      import { readFileSync } from 'node:fs';
      import { openAgentDatabase } from '${repo}edge-agent/cache/database.ts';
      import { DesiredCache } from '${repo}edge-agent/cache/desired-cache.ts';
      import { Outbox } from '${repo}edge-agent/cache/outbox.ts';
      import { DeviceBroker } from '${repo}edge-agent/devices/device-broker.ts';
      import { createDeviceMetrics } from '${repo}edge-agent/devices/device-metrics.ts';
      import { silentLogger } from '${repo}shared/logger.ts';
      import { createRegistry } from '${repo}shared/metrics.ts';
      const db = openAgentDatabase(${JSON.stringify(file)}, silentLogger()).db;
      const cache = new DesiredCache(db); const outbox = new Outbox(db);
      cache.apply({ type: 'sync', revision: 1, objects: JSON.parse(readFileSync(${JSON.stringify(join(dir, 'objects.json'))}, 'utf8')), deletes: [] });
      const broker = new DeviceBroker({ cache, outbox, db, metrics: createDeviceMetrics(createRegistry('x'), outbox), log: silentLogger(), node: 'n1', unit: 'u' } as never, { listen: { host: '127.0.0.1', port: 0 } });
      await broker.start();
      process.stdout.write(String(broker.addresses().tcp!.port) + '\\n');
    `);
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await within(new Promise<number>((resolve, reject) => {
        child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      }), 30_000, 'the child agent listens');
      const c = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 't1', username: 't1-user', password: 'pw-1' });
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 200; i++) sends.push(c.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: i % 100 }), { qos: 1 }));
      await Promise.all(sends);
      child.kill('SIGKILL');
      await within(new Promise((resolve) => child.once('exit', resolve)), 10_000, 'the child agent exits');
      c.end(true);
    } finally {
      child.kill('SIGKILL');
    }
    const db = new Database(file, { readonly: true });
    const got = db.prepare("SELECT body FROM outbox WHERE kind = 'telemetry' ORDER BY seq").all() as Array<{ body: string }>;
    db.close();
    assert.deepEqual(got.map((r) => (JSON.parse(r.body) as { values: { temperature: number } }).values.temperature), Array.from({ length: 200 }, (_, i) => i % 100));
  });
});

// The --mqtt-url (mosquitto) side runs the same behaviour suite as the embedded broker: devices-behaviour.test.ts.
