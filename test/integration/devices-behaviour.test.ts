// The device behaviour suite of issue 5, run twice by the same code: against the agent's embedded
// broker, and against a real mosquitto (apt) with the agent as its client (`--mqtt-url`), the
// devices and the agent logging in through a password file and confined by the ACL shipped in
// examples/mosquitto/outpost.acl. Devices are real mqtt.js clients; the agent's outbox is a real
// SQLite file; the agent is restarted on that file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import type { AnyObject } from '../../shared/api/index.js';
import { topics } from '../../shared/devices/topics.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import { DeviceBroker } from '../../edge-agent/devices/device-broker.js';
import { ExternalBroker } from '../../edge-agent/devices/external-broker.js';
import { createDeviceMetrics } from '../../edge-agent/devices/device-metrics.js';
import { hashPassword } from '../../edge-agent/devices/password.js';
import { badPayloads, collect, connectMqtt, device, openStore, outboxRows, thermostatModel, within } from '../helpers/device-broker.js';
import { waitFor } from '../helpers/wait.js';
import { AGENT_USER, NO_MOSQUITTO, agentAnswers, hasMosquitto, startMosquitto } from '../helpers/mosquitto.js';

const AGENT_PASSWORD = 'agent-secret';
const DEVICES = ['t1', 't2', 'unit-dev'] as const;
const passwordOf = (name: string) => `pw-${name}`;
/** Base of the telemetry timestamps: a message's number is its `ts` minus this. */
const T0 = 1_700_000_000_000;

interface Fixture {
  /** Where devices connect (changes when the embedded broker restarts on a new port). */
  url(): string;
  /** The agent's device metrics registry (a new one after a restart). */
  registry(): Registry;
  outbox(): ReturnType<typeof openStore>['outbox'];
  /** A sync reached the agent: apply it to the cache and let the broker side publish. */
  apply(objects: AnyObject[]): void;
  /** Stops the agent's broker side and starts it again on the same SQLite file. */
  restartAgent(): Promise<void>;
  stop(): Promise<void>;
}

type Broker = { start(): Promise<void>; stop(): Promise<void>; refresh(): void };

/** The agent's objects: model, devices (t1 and t2 on node n1, unit-dev on unit site-a), credentials with username = device name. */
async function agentObjects(): Promise<AnyObject[]> {
  const creds = await Promise.all(DEVICES.map(async (name) => ({
    apiVersion: 'outpost.dev/v1alpha1', kind: 'DeviceCredential', metadata: { name },
    spec: { device: name, username: name, passwordHash: await hashPassword(passwordOf(name), 1024), createdAt: new Date().toISOString() },
  }) as AnyObject));
  return [thermostatModel, device('t1', 3, { setpoint: 21 }), device('t2', 1), device('unit-dev', 1, {}, { unit: 'site-a' }), ...creds];
}

/** One agent (node n1, unit site-a) over a SQLite file, its broker side built by `make`. */
async function agentOn(file: string, make: (deps: ConstructorParameters<typeof DeviceBroker>[0]) => Broker, url: (b: Broker) => string, ready: (f: Fixture) => Promise<void>): Promise<Fixture> {
  let revision = 0;
  let store = openStore(file);
  store.cache.apply({ type: 'sync', revision: ++revision, objects: await agentObjects(), deletes: [] });
  let registry = createRegistry('outpost_agent_test');
  const boot = async () => {
    const b = make({ ...store, metrics: createDeviceMetrics(registry, store.outbox), log: silentLogger(), node: 'n1', unit: 'site-a' });
    await b.start();
    return b;
  };
  let broker = await boot();
  const fixture: Fixture = {
    url: () => url(broker),
    registry: () => registry,
    outbox: () => store.outbox,
    apply(objects) {
      store.cache.apply({ type: 'sync', revision: ++revision, objects, deletes: [] });
      broker.refresh();
    },
    async restartAgent() {
      await broker.stop();
      store.db.close();
      store = openStore(file);
      registry = createRegistry('outpost_agent_test');
      broker = await boot();
      await ready(fixture);
    },
    async stop() {
      await broker.stop();
      store.db.close();
    },
  };
  await ready(fixture);
  return fixture;
}

async function startEmbedded(dir: string): Promise<Fixture> {
  return agentOn(
    join(dir, 'embedded.db'),
    (deps) => new DeviceBroker(deps, { listen: { host: '127.0.0.1', port: 0 } }),
    (b) => `mqtt://127.0.0.1:${(b as DeviceBroker).addresses().tcp!.port}`,
    async () => {},
  );
}

/** mosquitto from apt with a password file (agent and devices) and the shipped ACL; the agent is its client. */
async function startWithMosquitto(dir: string): Promise<Fixture> {
  const mosquitto = await startMosquitto(dir, [[AGENT_USER, AGENT_PASSWORD], ...DEVICES.map((d): [string, string] => [d, passwordOf(d)])]);
  const fixture = await agentOn(
    join(dir, 'external.db'),
    (deps) => new ExternalBroker(deps, { url: `mqtt://${AGENT_USER}:${AGENT_PASSWORD}@127.0.0.1:${mosquitto.port}` }),
    () => mosquitto.url,
    (f) => agentAnswers(f.url(), 't1', passwordOf('t1')),
  );
  return {
    ...fixture,
    async stop() {
      await fixture.stop();
      mosquitto.stop();
    },
  };
}

const brokers = [
  { name: 'embedded broker', start: startEmbedded, presenceFromConnection: true, skip: false as const },
  { name: 'mosquitto (--mqtt-url)', start: startWithMosquitto, presenceFromConnection: false, skip: hasMosquitto ? (false as const) : NO_MOSQUITTO },
];

for (const broker of brokers) {
  describe(`device behaviour: ${broker.name}`, { skip: broker.skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-devbeh-'));
    let f: Fixture;
    const clients: MqttClient[] = [];
    const dev = async (name: string, extra: Parameters<typeof connectMqtt>[1] = {}) => {
      const c = await connectMqtt(f.url(), { clientId: name, username: name, password: passwordOf(name), protocolVersion: 4, ...extra });
      clients.push(c);
      return c;
    };
    const telemetryOf = (name: string) => outboxRows(f.outbox(), 'telemetry')
      .map((r) => r.body as { device: string; timestamp: string; values: Record<string, number> })
      .filter((b) => b.device === name)
      .map((b) => Date.parse(b.timestamp) - T0);
    const rejected = async (reason: string) => {
      const text = await f.registry().getSingleMetricAsString('outpost_agent_mqtt_rejected_total');
      return Number(new RegExp(`reason="${reason}"} (\\d+)`).exec(text)?.[1] ?? 0);
    };

    before(async () => { f = await broker.start(dir); });
    after(async () => {
      for (const c of clients) c.end(true);
      await f?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test('an anonymous client, a wrong password and an unknown user are refused', async () => {
      await assert.rejects(connectMqtt(f.url(), { clientId: 't1' }), /Not authorized/);
      await assert.rejects(connectMqtt(f.url(), { clientId: 't1', username: 't1', password: 'wrong' }), /Not authorized|Bad username or password/);
      await assert.rejects(connectMqtt(f.url(), { clientId: 'ghost', username: 'ghost', password: 'pw-ghost' }), /Not authorized|Bad username or password/);
    });

    test('telemetry (QoS 1 and 0) reaches the outbox once each, in order, across an agent restart', async () => {
      /** Messages from..to-1 in order, `window` QoS 1 publishes in flight at most. */
      const publish = async (c: MqttClient, from: number, to: number, qos: 0 | 1, name = 't1') => {
        for (let n = from; n < to; n += 50) {
          await Promise.all(Array.from({ length: Math.min(50, to - n) }, (_, i) => c.publishAsync(topics.telemetry(name), JSON.stringify({ ts: T0 + n + i, temperature: (n + i) % 100 }), { qos })));
        }
      };
      let c = await dev('t1');
      await publish(c, 0, 300, 1);
      await publish(c, 300, 310, 0);
      const unit = await dev('unit-dev');
      await publish(unit, 0, 20, 1, 'unit-dev');
      await waitFor(() => telemetryOf('t1').length >= 310 && telemetryOf('unit-dev').length >= 20, { timeoutMs: 20_000, message: 'first 310 messages of t1 and 20 of unit-dev in the outbox' });
      c.end(true);
      await f.restartAgent();
      c = await dev('t1');
      await publish(c, 310, 410, 1);
      await waitFor(() => telemetryOf('t1').length >= 410, { timeoutMs: 20_000, message: 'all 410 messages in the outbox' });
      assert.deepEqual(telemetryOf('t1'), Array.from({ length: 410 }, (_, i) => i), 'once each, in order');
      assert.deepEqual(telemetryOf('unit-dev'), Array.from({ length: 20 }, (_, i) => i), 'a unit-bound device too');
      await c.endAsync();
      await unit.endAsync();
    });

    test('reported twin: coalesced per device with its version and observedDesired; an older version is refused', async () => {
      const c = await dev('t1');
      await c.subscribeAsync(topics.errors('t1'), { qos: 1 });
      const errors = collect(c, topics.errors('t1'), 1);
      await c.publishAsync(topics.reported('t1'), JSON.stringify({ values: { temperature: 20, mode: 'heat' }, version: 1 }), { qos: 1 });
      await c.publishAsync(topics.reported('t1'), JSON.stringify({ values: { temperature: 21 }, version: 2, observedDesired: 3 }), { qos: 1 });
      await c.publishAsync(topics.reported('t1'), JSON.stringify({ values: { temperature: 5 }, version: 1 }), { qos: 1 });
      assert.equal(((await errors)[0] as { reason: string }).reason, 'stale-version');
      const report = await waitFor(() => outboxRows(f.outbox(), 'device-report').map((r) => r.body as { device: string; version?: number; observedDesired?: number; reported: Record<string, { value: unknown; version?: number }> }).find((b) => b.device === 't1' && b.version === 2), { timeoutMs: 10_000, message: 'the coalesced report row' });
      assert.deepEqual(Object.fromEntries(Object.entries(report.reported).map(([k, v]) => [k, [v.value, v.version]])), { temperature: [21, 2], mode: ['heat', 1] });
      assert.equal(report.observedDesired, 3);
      await c.endAsync();
    });

    test('desired twin: retained with its version, delivered when it changes, and to a device that connects later', async () => {
      const c = await dev('t1');
      const first = collect(c, topics.desired('t1'), 1);
      await c.subscribeAsync(topics.desired('t1'), { qos: 1 });
      assert.deepEqual(await first, [{ version: 3, values: { setpoint: 21 } }]);
      const next = collect(c, topics.desired('t1'), 1);
      f.apply([device('t1', 4, { setpoint: 22, mode: 'off' })]);
      assert.deepEqual(await next, [{ version: 4, values: { setpoint: 22, mode: 'off' } }]);
      await c.endAsync();
      const later = await dev('t1', { clientId: 't1-later' });
      const retained = collect(later, topics.desired('t1'), 1);
      await later.subscribeAsync(topics.desired('t1'), { qos: 1 });
      assert.deepEqual(await retained, [{ version: 4, values: { setpoint: 22, mode: 'off' } }]);
      await later.endAsync();
    });

    test('twin/get answers the desired twin and the reported values', async () => {
      const c = await dev('t1');
      await c.subscribeAsync(topics.getResponse('t1'), { qos: 1 });
      const response = collect(c, topics.getResponse('t1'), 1);
      await c.publishAsync(topics.get('t1'), '', { qos: 1 });
      assert.deepEqual(await response, [{ desired: { version: 4, values: { setpoint: 22, mode: 'off' } }, reported: { temperature: 21, mode: 'heat' } }]);
      await c.endAsync();
    });

    test('each kind of bad payload gets an errors-topic message and a counter; other devices keep being served', async () => {
      const c = await dev('t2');
      await c.subscribeAsync(topics.errors('t2'), { qos: 1 });
      const bad = badPayloads('t2');
      const reasons = ['not-json', 'unknown-property', 'wrong-type', 'out-of-range', 'too-large', 'stale-version'];
      const before = Object.fromEntries(await Promise.all(reasons.map(async (r) => [r, await rejected(r)] as const)));
      const expected = bad.filter((b) => b[2]).map((b) => b[2]);
      const errors = collect(c, topics.errors('t2'), expected.length);
      for (const [topic, payload] of bad) await c.publishAsync(topic, payload, { qos: 1 });
      const got = (await errors) as Array<{ reason: string; error: string; topic: string }>;
      assert.deepEqual(got.map((e) => e.reason), expected);
      assert.ok(got.every((e) => e.error.length > 0 && e.topic.startsWith('outpost/v1/devices/t2/')));
      for (const r of reasons) assert.equal(await rejected(r), before[r]! + expected.filter((e) => e === r).length, `counter of ${r}`);
      // Still serving: this device, and another one.
      await c.publishAsync(topics.telemetry('t2'), JSON.stringify({ temperature: 21.5, ts: T0 + 7 }), { qos: 1 });
      const t1 = await dev('t1');
      await t1.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: 1, ts: T0 + 1000 }), { qos: 1 });
      await waitFor(() => telemetryOf('t2').includes(7) && telemetryOf('t1').includes(1000), { timeoutMs: 10_000, message: 'good telemetry after the bad' });
      assert.deepEqual(telemetryOf('t2'), [7], 'none of the bad payloads was stored');
      await c.endAsync();
      await t1.endAsync();
    });

    test('presence: online at connect, offline when the connection is lost (last will)', async () => {
      const presence = () => outboxRows(f.outbox(), 'device-presence').map((r) => r.body as { device: string; online: boolean }).find((p) => p.device === 't2');
      // The device follows the presence convention of --mqtt-url mode; the embedded broker takes
      // presence from the connection and accepts the same device unchanged.
      const c = await dev('t2', { will: { topic: topics.presence('t2'), payload: Buffer.from('offline'), qos: 1, retain: true } });
      await c.publishAsync(topics.presence('t2'), 'online', { qos: 1, retain: true });
      await waitFor(() => presence()?.online === true, { timeoutMs: 10_000, message: 't2 online' });
      if (broker.presenceFromConnection) {
        await c.publishAsync(topics.presence('t2'), 'maybe', { qos: 1 }); // ignored: the connection says online
      } else {
        await c.subscribeAsync(topics.errors('t2'), { qos: 1 });
        const errors = collect(c, topics.errors('t2'), 1);
        await c.publishAsync(topics.presence('t2'), 'maybe', { qos: 1 });
        assert.equal(((await errors)[0] as { reason: string }).reason, 'wrong-type');
      }
      assert.equal(presence()?.online, true);
      c.stream.destroy(); // no DISCONNECT: the broker publishes the will
      await waitFor(() => presence()?.online === false, { timeoutMs: 10_000, message: 't2 offline' });
      c.end(true);
    });

    test('access: a device can neither read another device\'s twin nor publish on its telemetry topic', async () => {
      const t2 = await dev('t2');
      const foreign: string[] = [];
      t2.on('message', (topic) => { if (!topic.startsWith('outpost/v1/devices/t2/')) foreign.push(topic); });
      for (const filter of [topics.desired('t1'), topics.getResponse('t1'), 'outpost/v1/devices/#', 'outpost/v1/devices/+/twin/desired']) {
        // The embedded broker refuses the subscription (SUBACK 128); mosquitto 2.0 grants it but
        // checks read access on every message, so nothing arrives through it. Either way: nothing.
        await t2.subscribeAsync(filter, { qos: 1 }).catch(() => undefined);
      }
      // A barrier: t2's own retained desired twin arrives after anything those subscriptions could have delivered.
      const own = collect(t2, topics.desired('t2'), 1);
      await t2.subscribeAsync(topics.desired('t2'), { qos: 1 });
      await own;
      assert.deepEqual(foreign, [], 'no message of another device reached t2');
      // Publishing on t1's telemetry: mosquitto drops it (MQTT 3.1.1 PUBACKs it all the same); the embedded broker closes the connection.
      const closed = new Promise<string>((resolve) => t2.once('close', () => resolve('closed')));
      const outcome = await within(Promise.race([t2.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: 66, ts: T0 + 6666 }), { qos: 1 }).then(() => 'acked', () => 'closed'), closed]), 10_000, 'the forbidden publish is settled');
      assert.ok(outcome === 'acked' || outcome === 'closed');
      const t1 = await dev('t1');
      await t1.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: 1, ts: T0 + 7777 }), { qos: 1 });
      await waitFor(() => telemetryOf('t1').includes(7777), { timeoutMs: 10_000, message: 't1\'s own message arrives' });
      assert.ok(!telemetryOf('t1').includes(6666), 't2\'s message on t1\'s topic was not taken as t1\'s');
      t2.end(true);
      await t1.endAsync();
    });
  });
}
