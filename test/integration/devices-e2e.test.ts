// Devices end to end with real processes: a hub, an agent with its embedded broker, and an MQTT
// device (mqtt.js). The offline story of issue 5, at the 10 000 messages: the hub is
// killed, the device publishes QoS 1 telemetry and reports, the agent is SIGKILLed midway and
// restarted, the hub comes back: every message reaches the hub once, in order; the reported twin
// is the latest; a desired change made while the agent was down reaches the device afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import type { Device } from '../../shared/api/index.js';
import { topics } from '../../shared/devices/topics.js';
import { TestCluster, type Proc } from '../helpers/cluster.js';
import { nodeUnit } from '../helpers/objects.js';
import { waitFor, within } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
// The figure, 10 000 messages, is the default; OUTPOST_E2E_MESSAGES changes it (even).
const MESSAGES = Number(process.env.OUTPOST_E2E_MESSAGES ?? 10_000);

const model = {
  apiVersion: 'outpost.dev/v1alpha1', kind: 'DeviceModel', metadata: { name: 'meter' },
  spec: { properties: [
    { name: 'n', type: 'int', minimum: 0, access: 'ReadOnly' },
    { name: 'temperature', type: 'float', minimum: -40, maximum: 125, access: 'ReadOnly' },
    { name: 'setpoint', type: 'float', minimum: 5, maximum: 30, access: 'ReadWrite' },
  ] },
};

describe('devices end to end (hub, agent, MQTT device)', () => {
  const cluster = new TestCluster();
  let agent: Proc & { localApi: string };
  let password = '';
  const clients: MqttClient[] = [];
  after(async () => {
    for (const c of clients) c.end(true);
    await cluster.cleanup();
  });

  const brokerUrl = async () => {
    const st = (await (await fetch(`${agent.localApi}/v1/status`)).json()) as { mqtt?: { tcp?: { port: number } } };
    const port = st.mqtt?.tcp?.port;
    assert.ok(port, `agent status has no MQTT port: ${JSON.stringify(st.mqtt)}`);
    return `mqtt://127.0.0.1:${port}`;
  };
  const connectDevice = async (): Promise<{ client: MqttClient; desired: Array<{ version: number; values: Record<string, unknown> }> }> => {
    const desired: Array<{ version: number; values: Record<string, unknown> }> = [];
    const client = mqtt.connect(await brokerUrl(), { username: 'meter-1', password, clientId: 'meter-1', clean: false, reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4 });
    clients.push(client);
    client.on('error', () => undefined);
    client.on('message', (topic, payload) => {
      if (topic === topics.desired('meter-1')) desired.push(JSON.parse(payload.toString()) as { version: number; values: Record<string, unknown> });
    });
    // 'close' too: a connect timeout with reconnectPeriod 0 ends in a close, not always an error.
    await within(new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    }), 10_000, 'the device connects');
    await client.subscribeAsync(topics.desired('meter-1'), { qos: 1 });
    return { client, desired };
  };
  /** Publishes n = from..to-1 with QoS 1, at most 50 in flight; stops quietly when the link drops. */
  const publishRange = async (client: MqttClient, from: number, to: number): Promise<number> => {
    let next = from;
    const worker = async () => {
      while (next < to && client.connected) {
        const n = next++;
        try {
          await client.publishAsync(topics.telemetry('meter-1'), JSON.stringify({ n, temperature: 20 + (n % 10) }), { qos: 1 });
        } catch {
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    return next;
  };

  before(async () => {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, nodeUnit('plant'));
    agent = await cluster.startAgent('gw-1', 'plant');
    await cluster.api('PUT', `${API}/devicemodels/meter`, model);
    await cluster.api('PUT', `${API}/devices/meter-1`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'Device', metadata: { name: 'meter-1' }, spec: { model: 'meter', node: 'gw-1', telemetryRetention: { maxCount: 1_000_000 }, desired: { setpoint: 20 } } });
    password = (await cluster.api<{ password: string }>('POST', `${API}/devices/meter-1/credentials`)).password;
  });

  test('a device gets its desired twin; telemetry and reports reach the hub', async () => {
    const { client, desired } = await waitFor(async () => connectDevice().catch(() => undefined), { timeoutMs: 20_000, message: 'device connects (credential delivered to the agent)' });
    await waitFor(() => desired.some((d) => d.values.setpoint === 20), { timeoutMs: 10_000, message: 'retained desired twin' });
    await publishRange(client, 0, 100);
    await client.publishAsync(topics.reported('meter-1'), JSON.stringify({ values: { temperature: 21.5 }, observedDesired: desired.at(-1)?.version }), { qos: 1 });
    await waitFor(async () => {
      const d = await cluster.api<Device>('GET', `${API}/devices/meter-1`);
      return d.status?.reported?.temperature?.value === 21.5 && d.status.online === true && d.status.observedDesired === desired.at(-1)?.version;
    }, { timeoutMs: 15_000, message: 'reported twin, presence and observedDesired at the hub' });
    const rows = await waitFor(async () => {
      const r = await cluster.api<{ items: { values: { n: number } }[] }>('GET', `${API}/devices/meter-1/telemetry?limit=100000`);
      return r.items.length >= 100 ? r.items : undefined;
    }, { timeoutMs: 15_000, message: '100 telemetry rows at the hub' });
    assert.deepEqual(rows.map((r) => r.values.n), Array.from({ length: 100 }, (_, i) => i));
    client.end(true);
  });

  test('offline: hub down, agent killed midway, desired changed while the agent is down; nothing lost or doubled', async (t) => {
    const hubPort = cluster.hubPort();
    await cluster.requireHub().kill();
    let { client } = await connectDevice();
    // First half with the hub down; then the agent dies under the device.
    let sent = await publishRange(client, 100, 100 + MESSAGES / 2);
    assert.equal(sent, 100 + MESSAGES / 2, 'every PUBACK of the first half arrived');
    await client.publishAsync(topics.reported('meter-1'), JSON.stringify({ values: { temperature: 30.25 } }), { qos: 1 });
    await agent.kill();
    client.end(true);
    agent = await cluster.restartAgent('gw-1', `http://127.0.0.1:${hubPort}`);
    ({ client } = await waitFor(async () => connectDevice().catch(() => undefined), { timeoutMs: 20_000, message: 'device reconnects to the restarted agent (offline: credential from the cache)' }));
    sent = await publishRange(client, 100 + MESSAGES / 2, 100 + MESSAGES);
    assert.equal(sent, 100 + MESSAGES, 'every PUBACK of the second half arrived');
    await client.publishAsync(topics.reported('meter-1'), JSON.stringify({ values: { temperature: 31.5 } }), { qos: 1 });

    // The agent goes down; the operator changes the desired twin while the hub is back.
    await agent.kill();
    client.end(true);
    await cluster.startHub(hubPort);
    await cluster.api('PUT', `${API}/devices/meter-1`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'Device', metadata: { name: 'meter-1' }, spec: { model: 'meter', node: 'gw-1', telemetryRetention: { maxCount: 1_000_000 }, desired: { setpoint: 23 } } });
    agent = await cluster.restartAgent('gw-1', `http://127.0.0.1:${hubPort}`);

    // The restarted hub stores exactly the MESSAGES rows it had not acknowledged (its counter
    // started at 0; re-sent duplicates are counted apart), and every stored row, read through the
    // API page by page with its cursor, is each number once, in order.
    const stored = async () => {
      const text = await (await cluster.fetch('GET', '/metrics')).text();
      return Number(/^outpost_hub_telemetry_rows_stored_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
    };
    await waitFor(async () => (await stored()) >= MESSAGES, { timeoutMs: 120_000, intervalMs: 500, message: `${MESSAGES} telemetry rows stored by the restarted hub` });
    assert.equal(await stored(), MESSAGES, 'stored once each');
    const total = 100 + MESSAGES;
    const numbers: number[] = [];
    let cursor = '0';
    for (let page = 0; page < 1000; page++) {
      const body = await cluster.api<{ items: { values: { n: number } }[]; next: string; more: boolean }>('GET', `${API}/devices/meter-1/telemetry?after=${cursor}&limit=3000`);
      numbers.push(...body.items.map((r) => r.values.n));
      cursor = body.next;
      if (!body.more) break;
    }
    assert.equal(numbers.length, total, 'every message stored once');
    assert.ok(numbers.every((n, i) => n === i), `in order, none missing, none twice (first wrong at ${numbers.findIndex((n, i) => n !== i)})`);
    await waitFor(async () => (await cluster.api<Device>('GET', `${API}/devices/meter-1`)).status?.reported?.temperature?.value === 31.5, { timeoutMs: 15_000, message: 'the reported twin is the latest' });

    const again = await waitFor(async () => connectDevice().catch(() => undefined), { timeoutMs: 20_000, message: 'device reconnects' });
    await waitFor(() => again.desired.some((d) => d.values.setpoint === 23), { timeoutMs: 15_000, message: 'the desired change made while the agent was down reaches the device' });
    // The device acknowledges it: the hub measures the convergence lag of that change.
    const version = again.desired.find((d) => d.values.setpoint === 23)!.version;
    await again.client.publishAsync(topics.reported('meter-1'), JSON.stringify({ values: {}, observedDesired: version }), { qos: 1 });
    await waitFor(async () => (await cluster.api<Device>('GET', `${API}/devices/meter-1`)).status?.observedDesired === version, { timeoutMs: 15_000, message: 'observedDesired at the hub' });
    const metrics = await (await cluster.fetch('GET', '/metrics')).text();
    assert.match(metrics, /^outpost_hub_twin_convergence_seconds_count 1$/m, 'one desired change converged');
    t.diagnostic(`twin convergence of the change made while the agent was down: ${/^outpost_hub_twin_convergence_seconds_sum (\S+)$/m.exec(metrics)?.[1] ?? '?'} s`);
  });
});
