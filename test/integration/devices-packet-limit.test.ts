import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { topics } from '../../shared/devices/topics.js';
import { connectMqtt, credential, device, outboxRows, startBroker, thermostatModel, within } from '../helpers/device-broker.js';

// MQTT 3.1.1 clients of the embedded broker: a packet whose header announces more than 256 KiB
// ends its connection before the body is buffered (aedes would read it whole); packets split over
// many writes or packed into one write pass intact.

const dir = mkdtempSync(join(tmpdir(), 'outpost-packet-limit-'));
let env: Awaited<ReturnType<typeof startBroker>>;

before(async () => {
  env = await startBroker(join(dir, 'cache.db'), [thermostatModel, device('t1', 1), device('t2', 1), await credential('t1', 'pw-1'), await credential('t2', 'pw-2')]);
});
after(async () => {
  await env.broker.stop();
  env.db.close();
  rmSync(dir, { recursive: true, force: true });
});

const port = () => env.broker.addresses().tcp!.port;
const v4 = (...packets: Packet[]) => Buffer.concat(packets.map((p) => mqttPacket.generate(p, { protocolVersion: 4 })));
const connectPacket = (clientId: string, username: string, password: string): Packet => ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 30, username, password: Buffer.from(password) });
const telemetry = (name: string, messageId: number, temperature: number): IPublishPacket => ({ cmd: 'publish', topic: topics.telemetry(name), payload: Buffer.from(JSON.stringify({ temperature })), qos: 1, messageId, retain: false, dup: false });

async function tooLargeCount(): Promise<number> {
  const text = await env.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith('outpost_agent_mqtt_rejected_total{') && l.includes('reason="packet-too-large"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A 3.1.1 client on a bare socket: writes bytes, collects the packets the broker sends. */
class RawClient {
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  readonly got: Packet[] = [];
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    this.parser.on('packet', (p: Packet) => { this.got.push(p); this.waiting?.(); });
    this.parser.on('error', () => {}); // an MQTT 5 answer (last test) need not parse as 3.1.1
    socket.on('data', (d: Buffer) => this.parser.parse(d));
    socket.on('close', () => { this.closed = true; this.waiting?.(); });
    socket.on('error', () => {});
  }

  static open(): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect(port(), '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()));
  }

  /** Waits (bounded) until `count` packets of a kind arrived. */
  async waitFor(cmd: Packet['cmd'], count: number, timeoutMs = 5_000): Promise<Packet[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.got.filter((p) => p.cmd === cmd);
      if (found.length >= count) return found;
      if (this.closed) throw new Error(`connection closed after ${found.length} of ${count} ${cmd}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${found.length} of ${count} ${cmd} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, left); this.waiting = () => { clearTimeout(t); resolve(); }; });
    }
  }

  waitClosed(timeoutMs = 5_000): Promise<void> {
    return within(new Promise<void>((resolve) => { if (this.closed) resolve(); else this.socket.once('close', () => resolve()); }), timeoutMs, 'the broker closes the connection');
  }
}

test('packet limit: a 3.1.1 PUBLISH announcing 10 MB closes that connection, is counted, and another device keeps working', async () => {
  const other = await connectMqtt(env.url, { clientId: 't2', username: 't2-user', password: 'pw-2', protocolVersion: 4 });
  try {
    const before = await tooLargeCount();
    const rowsBefore = outboxRows(env.outbox, 'telemetry').length;
    const c = await RawClient.open();
    await c.write(v4(connectPacket('t1', 't1-user', 'pw-1')));
    await c.waitFor('connack', 1);
    // PUBLISH QoS 0, remaining length 10 000 000 (0x80 0xAD 0xE2 0x04), then the start of its topic.
    await c.write(Buffer.from([0x30, 0x80, 0xad, 0xe2, 0x04, 0x00, 0x05, 0x61]));
    await c.waitClosed();
    assert.equal(await tooLargeCount(), before + 1);
    assert.equal(outboxRows(env.outbox, 'telemetry').length, rowsBefore);
    await other.publishAsync(topics.telemetry('t2'), JSON.stringify({ temperature: 3 }), { qos: 1 });
    assert.equal(outboxRows(env.outbox, 'telemetry').length, rowsBefore + 1);
  } finally {
    other.end(true);
  }
});

test('packet limit: a packet just under the limit passes; a CONNECT announcing more than it is refused before login', async () => {
  const before = await tooLargeCount();
  const c = await RawClient.open();
  await c.write(v4(connectPacket('t1', 't1-user', 'pw-1')));
  await c.waitFor('connack', 1);
  // A publish of exactly 256 KiB remaining length passes the limit (its payload is then refused as
  // telemetry, over 64 KiB, which does not end the connection).
  const topic = topics.telemetry('t1');
  const payloadBytes = 256 * 1024 - 2 - Buffer.byteLength(topic) - 2;
  await c.write(v4({ ...telemetry('t1', 7, 0), payload: Buffer.alloc(payloadBytes, 0x20) }));
  await c.write(v4({ cmd: 'pingreq' }));
  await c.waitFor('pingresp', 1);
  assert.equal(await tooLargeCount(), before);
  c.socket.end();

  const big = await RawClient.open();
  await big.write(Buffer.from([0x10, 0x81, 0x80, 0x10, 0x00, 0x04])); // CONNECT announcing 262 145 bytes
  await big.waitClosed();
  assert.equal(big.got.length, 0);
  assert.equal(await tooLargeCount(), before + 1);
});

test('packet limit: packets split into 1- to 3-byte writes and several packets in one write arrive intact', async () => {
  const rowsBefore = outboxRows(env.outbox, 'telemetry').length;
  const c = await RawClient.open();
  const bytes = v4(connectPacket('t1', 't1-user', 'pw-1'), telemetry('t1', 1, 10.5), telemetry('t1', 2, 11.5));
  c.socket.setNoDelay(true);
  for (let i = 0; i < bytes.length;) {
    const n = 1 + (i % 3);
    await c.write(bytes.subarray(i, i + n));
    i += n;
    // Yield to the event loop so the broker sees separate reads, not one coalesced buffer.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await c.waitFor('puback', 2);
  // Many packets in a single write, one of them large (64 KiB payload) in the middle.
  const packed = [3, 4, 5, 6, 7].map((id) => telemetry('t1', id, id));
  await c.write(v4(...packed.slice(0, 2), { cmd: 'publish', topic: topics.telemetry('t1'), payload: Buffer.from(JSON.stringify({ temperature: 99 }) + ' '.repeat(60 * 1024)), qos: 1, messageId: 8, retain: false, dup: false }, ...packed.slice(2)));
  const acks = await c.waitFor('puback', 8);
  assert.deepEqual(acks.map((p) => (p as { messageId: number }).messageId), [1, 2, 3, 4, 8, 5, 6, 7]);
  assert.equal(c.closed, false);
  const temperatures = outboxRows(env.outbox, 'telemetry').slice(rowsBefore).map((r) => (r.body as { values?: { temperature?: number } }).values?.temperature);
  assert.deepEqual(temperatures.filter((t) => t !== 99), [10.5, 11.5, 3, 4, 5, 6, 7]);
  c.socket.end();
});

test('packet limit: over MQTT-over-WebSocket too, a PUBLISH header announcing 10 MB right behind the CONNECT closes the connection', async () => {
  const before = await tooLargeCount();
  const ws = new WebSocket(`ws://127.0.0.1:${env.broker.addresses().ws!.port}/mqtt`, 'mqtt');
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.on('error', () => {});
  await within(new Promise<void>((resolve) => ws.once('open', () => resolve())), 5_000, 'the WebSocket opens');
  // Two frames back to back: the second may reach the broker in the same read as the first,
  // before it has looked at the CONNECT; the limit applies from the first byte.
  ws.send(v4(connectPacket('t1', 't1-user', 'pw-1')));
  ws.send(Buffer.from([0x30, 0x80, 0xad, 0xe2, 0x04, 0x00, 0x05, 0x61]));
  await within(closed, 5_000, 'the broker closes the WebSocket');
  assert.equal(await tooLargeCount(), before + 1);
});

test('packet limit: an MQTT 5 client over the limit is counted the same way (its session sends DISCONNECT 0x95 and closes)', async () => {
  const before = await tooLargeCount();
  const c = await RawClient.open();
  await c.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 't1', clean: true, keepalive: 30, username: 't1-user', password: Buffer.from('pw-1') }, { protocolVersion: 5 }));
  await c.write(Buffer.from([0x30, 0x80, 0xad, 0xe2, 0x04, 0x00, 0x05, 0x61]));
  await c.waitClosed();
  assert.equal(await tooLargeCount(), before + 1);
});
