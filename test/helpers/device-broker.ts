import mqtt, { type MqttClient } from 'mqtt';
import type { AnyObject } from '../../shared/api/index.js';
import { topics } from '../../shared/devices/topics.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import { openAgentDatabase } from '../../edge-agent/cache/database.js';
import { DesiredCache } from '../../edge-agent/cache/desired-cache.js';
import { Outbox } from '../../edge-agent/cache/outbox.js';
import { DeviceBroker, type DeviceBrokerOptions } from '../../edge-agent/devices/device-broker.js';
import { createDeviceMetrics } from '../../edge-agent/devices/device-metrics.js';
import { hashPassword } from '../../edge-agent/devices/password.js';

// Fixtures for tests of the agent's embedded MQTT broker with real mqtt.js clients.

export const thermostatModel: AnyObject = {
  apiVersion: 'outpost.dev/v1alpha1', kind: 'DeviceModel', metadata: { name: 'thermostat' },
  spec: { properties: [
    { name: 'temperature', type: 'float', minimum: -40, maximum: 125, access: 'ReadOnly' },
    { name: 'setpoint', type: 'float', minimum: 5, maximum: 30, access: 'ReadWrite' },
    { name: 'mode', type: 'enum', enum: ['heat', 'off'], access: 'ReadWrite' },
    { name: 'label', type: 'string', maxLength: 8, access: 'ReadOnly' },
  ] },
};

/** A thermostat Device bound to node n1 (or `binding`). */
export const device = (name: string, generation: number, desired: Record<string, unknown> = {}, binding: Record<string, string> = { node: 'n1' }): AnyObject =>
  ({ apiVersion: 'outpost.dev/v1alpha1', kind: 'Device', metadata: { name, generation }, spec: { model: 'thermostat', ...binding, desired } }) as AnyObject;

/** The device's credential: username `<name>-user`, a cheap scrypt hash of `password`. */
export const credential = async (name: string, password: string): Promise<AnyObject> =>
  ({ apiVersion: 'outpost.dev/v1alpha1', kind: 'DeviceCredential', metadata: { name }, spec: { device: name, username: `${name}-user`, passwordHash: await hashPassword(password, 1024), createdAt: new Date().toISOString() } }) as AnyObject;

export function openStore(file: string) {
  const db = openAgentDatabase(file, silentLogger()).db;
  return { db, cache: new DesiredCache(db), outbox: new Outbox(db) };
}

/** An embedded broker of node n1 (unit site-a) over a real SQLite file, listening on 127.0.0.1 port 0 (TCP and WebSocket). */
export async function startBroker(file: string, objects: AnyObject[], options: Partial<DeviceBrokerOptions> = {}) {
  const store = openStore(file);
  store.cache.apply({ type: 'sync', revision: 1, objects, deletes: [] });
  const registry = createRegistry('outpost_agent_test');
  const broker = new DeviceBroker(
    { ...store, metrics: createDeviceMetrics(registry, store.outbox), log: silentLogger(), node: 'n1', unit: 'site-a' },
    { listen: { host: '127.0.0.1', port: 0 }, wsListen: { host: '127.0.0.1', port: 0 }, ...options },
  );
  await broker.start();
  return { ...store, broker, registry, url: `mqtt://127.0.0.1:${broker.addresses().tcp!.port}` };
}

/** Connects once (no reconnects); rejects with mqtt.js's error (its `code` is the CONNACK code). */
export function connectMqtt(url: string, options: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => { c.end(true); reject(err); });
  });
}

/** Resolves with the next `count` messages on `topic` (bounded by a timeout). */
export function collect(c: MqttClient, topic: string, count: number, timeoutMs = 5_000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const got: unknown[] = [];
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} messages on ${topic}`)), timeoutMs);
    c.on('message', (t, payload) => {
      if (t !== topic) return;
      got.push(payload.length ? JSON.parse(payload.toString()) : null);
      if (got.length === count) { clearTimeout(timer); resolve(got); }
    });
  });
}

/** Rejects when `p` has not settled within `ms` (moved to wait.ts, where the tunnel tests use it too). */
export { within } from './wait.js';

export const outboxRows = (outbox: Outbox, kind: string) => outbox.batch(100_000).filter((r) => r.kind === kind);

/** An assert.rejects matcher: the error's `code` (mqtt.js: CONNACK / PUBACK / SUBACK code) is `code`. */
export const refusedWith = (code: number) => (err: unknown) => (err as { code?: number }).code === code;

/**
 * One payload of each kind a thermostat device's messages are refused for: [topic, payload, the
 * errors-topic reason, or '' for the accepted report that makes the next one stale].
 */
export const badPayloads = (name: string): Array<[string, string | Buffer, string]> => [
  [topics.telemetry(name), 'not json', 'not-json'],
  [topics.telemetry(name), JSON.stringify({ humidity: 3 }), 'unknown-property'],
  [topics.telemetry(name), JSON.stringify({ temperature: 'warm' }), 'wrong-type'],
  [topics.telemetry(name), JSON.stringify({ temperature: 500 }), 'out-of-range'],
  [topics.telemetry(name), Buffer.alloc(70_000, 0x20), 'too-large'],
  [topics.reported(name), JSON.stringify({ values: { mode: 'cool' } }), 'out-of-range'],
  [topics.reported(name), JSON.stringify({ values: { label: 'far too long' } }), 'out-of-range'],
  [topics.reported(name), JSON.stringify({ values: { temperature: 20 }, version: 5 }), ''],
  [topics.reported(name), JSON.stringify({ values: { temperature: 19 }, version: 4 }), 'stale-version'],
];
