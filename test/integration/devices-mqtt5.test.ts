import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { topics } from '../../shared/devices/topics.js';
import { collect, connectMqtt, credential, device, outboxRows, startBroker, thermostatModel, within } from '../helpers/device-broker.js';

// What MQTT 5 gives a device on the embedded broker beyond what 3.1.1 can (the shared behaviour
// runs for both versions in devices-agent.test.ts). A raw client shows the exact packets.

const dir = mkdtempSync(join(tmpdir(), 'outpost-mqtt5-'));
let env: Awaited<ReturnType<typeof startBroker>>;
let revision = 1;

before(async () => {
  env = await startBroker(join(dir, 'cache.db'), [
    thermostatModel, device('t1', 2, { setpoint: 20 }), device('t2', 1),
    await credential('t1', 'pw-1'), await credential('t2', 'pw-2'),
  ]);
});
after(async () => {
  await env.broker.stop();
  env.db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A bare MQTT 5 client on a socket: sends packets, waits (bounded) for the next one of a kind. */
class RawClient {
  private readonly parser = mqttPacket.parser({ protocolVersion: 5 });
  private readonly got: Packet[] = [];
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(private readonly socket: Socket) {
    this.parser.on('packet', (p: Packet) => { this.got.push(p); this.waiting?.(); });
    socket.on('data', (d: Buffer) => this.parser.parse(d));
    socket.on('close', () => { this.closed = true; this.waiting?.(); });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(...packets: Packet[]): void {
    this.socket.write(Buffer.concat(packets.map((p) => mqttPacket.generate(p, { protocolVersion: 5 }))));
  }

  async next<C extends Packet['cmd']>(cmd: C, timeoutMs = 5_000): Promise<Extract<Packet, { cmd: C }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.got.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return this.got.splice(i, 1)[0] as Extract<Packet, { cmd: C }>;
      if (this.closed) throw new Error(`connection closed before ${cmd}; got ${this.got.map((p) => p.cmd).join(', ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${cmd} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, left); this.waiting = () => { clearTimeout(t); resolve(); }; });
    }
  }

  async login(clientId: string, username: string, password: string, properties: Record<string, unknown> = {}) {
    this.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: true, keepalive: 30, username, password: Buffer.from(password), properties });
    return this.next('connack');
  }

  waitClosed(timeoutMs = 5_000): Promise<void> {
    return within(new Promise<void>((resolve) => { if (this.closed) resolve(); else this.socket.once('close', () => resolve()); }), timeoutMs, 'the broker closes the connection');
  }

  end(): void {
    this.socket.destroy();
  }
}

const port = () => env.broker.addresses().tcp!.port;
const rejected = async (reason: string) => {
  const m = (await env.registry.getSingleMetric('outpost_agent_mqtt_rejected_total')!.get()).values.find((v) => v.labels.reason === reason);
  return m?.value ?? 0;
};

test('mqtt5: CONNACK carries v5 reason codes and a reason string; enhanced authentication is refused (0x8c)', async () => {
  const bad = await RawClient.open(port());
  const refused = await bad.login('t1', 't1-user', 'wrong');
  assert.equal(refused.reasonCode, 0x86);
  assert.match(String(refused.properties?.reasonString), /bad user name or password/);
  await bad.waitClosed();
  const wrongId = await RawClient.open(port());
  const idRefused = await wrongId.login('t2', 't1-user', 'pw-1');
  assert.equal(idRefused.reasonCode, 0x85);
  assert.match(String(idRefused.properties?.reasonString), /client id must be "t1"/);
  wrongId.end();
  const enhanced = await RawClient.open(port());
  assert.equal((await enhanced.login('t1', 't1-user', 'pw-1', { authenticationMethod: 'SCRAM-SHA-1' })).reasonCode, 0x8c);
  await enhanced.waitClosed();
  const ok = await RawClient.open(port());
  const accepted = await ok.login('t1', 't1-user', 'pw-1');
  assert.equal(accepted.reasonCode, 0);
  assert.equal(accepted.properties?.topicAliasMaximum, 32);
  assert.equal(accepted.properties?.wildcardSubscriptionAvailable, false);
  ok.send({ cmd: 'disconnect', reasonCode: 0 });
  await ok.waitClosed();
});

test('mqtt5: SUBACK and UNSUBACK give a reason per topic', async () => {
  const c = await RawClient.open(port());
  assert.equal((await c.login('t1-x', 't1-user', 'pw-1')).reasonCode, 0);
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [
    { topic: topics.desired('t1'), qos: 1 }, { topic: topics.desired('t2'), qos: 1 }, { topic: 'outpost/v1/devices/#', qos: 0 }, { topic: `$share/g/${topics.desired('t1')}`, qos: 0 },
  ] });
  assert.deepEqual((await c.next('suback')).granted, [1, 0x87, 0xa2, 0x9e]);
  // The retained desired twin arrives for the granted subscription.
  const desired = await c.next('publish');
  assert.equal(desired.topic, topics.desired('t1'));
  assert.deepEqual(JSON.parse(desired.payload.toString()), { version: 2, values: { setpoint: 20 } });
  if (desired.qos > 0) c.send({ cmd: 'puback', messageId: desired.messageId! });
  c.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: [topics.desired('t1'), topics.desired('t2')] });
  assert.deepEqual((await c.next('unsuback')).granted, [0, 0x11]);
  c.end();
});

test('mqtt5: a publish outside the device\'s topics gets PUBACK/PUBREC 0x87 in order and the connection stays', async () => {
  const c = await RawClient.open(port());
  assert.equal((await c.login('t1', 't1-user', 'pw-1')).reasonCode, 0);
  const before = outboxRows(env.outbox, 'telemetry').length;
  const refusedBefore = await rejected('not-allowed');
  const msg = (temperature: number) => Buffer.from(JSON.stringify({ temperature }));
  // In one write, so the broker reads them together (aedes then handles them concurrently).
  c.send(
    { cmd: 'publish', topic: topics.telemetry('t1'), payload: msg(1), qos: 1, messageId: 10, dup: false, retain: false },
    { cmd: 'publish', topic: topics.telemetry('t2'), payload: msg(2), qos: 1, messageId: 11, dup: false, retain: false },
    { cmd: 'publish', topic: topics.telemetry('t1'), payload: msg(3), qos: 1, messageId: 12, dup: false, retain: false },
  );
  const acks = [await c.next('puback'), await c.next('puback'), await c.next('puback')];
  assert.deepEqual(acks.map((a) => [a.messageId, a.reasonCode ?? 0]), [[10, 0], [11, 0x87], [12, 0]]);
  assert.match(String(acks[1]!.properties?.reasonString), /not allowed/);
  c.send({ cmd: 'publish', topic: 'elsewhere/topic', payload: msg(4), qos: 2, messageId: 13, dup: false, retain: false });
  const rec = await c.next('pubrec');
  assert.deepEqual([rec.messageId, rec.reasonCode], [13, 0x87]);
  c.send({ cmd: 'pingreq' });
  await c.next('pingresp');
  assert.deepEqual(outboxRows(env.outbox, 'telemetry').slice(before).map((r) => (r.body as { values: { temperature: number } }).values.temperature), [1, 3]);
  assert.equal(await rejected('not-allowed'), refusedBefore + 2);
  c.end();
});

test('mqtt5: PUBACKs of refused payloads, twin/get and presence wait behind the commits of the publishes read before them', async () => {
  const c = await RawClient.open(port());
  assert.equal((await c.login('t1', 't1-user', 'pw-1')).reasonCode, 0);
  const before = outboxRows(env.outbox, 'telemetry').length;
  const publish = (messageId: number, topic: string, payload: string) => ({ cmd: 'publish' as const, topic, payload: Buffer.from(payload), qos: 1 as const, messageId, dup: false, retain: false });
  // In one write: aedes handles them concurrently, so an ack released at once would overtake 20's.
  c.send(
    publish(20, topics.telemetry('t1'), '{"temperature":7}'),
    publish(21, topics.telemetry('t1'), 'not json'),
    publish(22, topics.get('t1'), ''),
    publish(23, topics.presence('t1'), 'online'),
    publish(24, topics.telemetry('t1'), '{"temperature":8}'),
  );
  const acks = [];
  for (let i = 0; i < 5; i++) acks.push((await c.next('puback')).messageId);
  assert.deepEqual(acks, [20, 21, 22, 23, 24]);
  assert.deepEqual(outboxRows(env.outbox, 'telemetry').slice(before).map((r) => (r.body as { values: { temperature: number } }).values.temperature), [7, 8]);
  c.end();
});

test('mqtt5: topic aliases set by the client are resolved; an alias out of range ends the connection with 0x94', async () => {
  const c = await RawClient.open(port());
  assert.equal((await c.login('t2', 't2-user', 'pw-2')).reasonCode, 0);
  const before = outboxRows(env.outbox, 'telemetry').length;
  c.send({ cmd: 'publish', topic: topics.telemetry('t2'), payload: Buffer.from('{"temperature":5}'), qos: 1, messageId: 1, dup: false, retain: false, properties: { topicAlias: 3 } });
  c.send({ cmd: 'publish', topic: '', payload: Buffer.from('{"temperature":6}'), qos: 1, messageId: 2, dup: false, retain: false, properties: { topicAlias: 3 } });
  assert.deepEqual([(await c.next('puback')).reasonCode ?? 0, (await c.next('puback')).reasonCode ?? 0], [0, 0]);
  const added = outboxRows(env.outbox, 'telemetry').slice(before).map((r) => r.body as { device: string; values: { temperature: number } });
  assert.deepEqual(added.map((b) => [b.device, b.values.temperature]), [['t2', 5], ['t2', 6]]);
  c.send({ cmd: 'publish', topic: '', payload: Buffer.from('{}'), qos: 0, dup: false, retain: false, properties: { topicAlias: 99 } });
  assert.equal((await c.next('disconnect')).reasonCode, 0x94);
  await c.waitClosed();
});

test('mqtt5: a session with an expiry survives a reconnect: queued desired twin delivered, session present', async () => {
  const options = { clientId: 't2-persist', username: 't2-user', password: 'pw-2', protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 300 } };
  const first = await connectMqtt(env.url, options);
  await first.subscribeAsync(topics.desired('t2'), { qos: 1 });
  await first.endAsync();
  env.cache.apply({ type: 'sync', revision: ++revision, objects: [device('t2', 2, { setpoint: 9 })], deletes: [] });
  env.broker.refresh();
  // mqtt.js emits queued messages right after CONNACK: listen before connecting.
  const c = mqtt.connect(env.url, { ...options, reconnectPeriod: 0, connectTimeout: 5_000 });
  const desired = collect(c, topics.desired('t2'), 1);
  const connack = await within(new Promise<{ sessionPresent: boolean }>((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); }), 5_000, 'reconnect');
  assert.equal(connack.sessionPresent, true);
  assert.deepEqual(await desired, [{ version: 2, values: { setpoint: 9 } }]);
  await c.endAsync();
});

test('mqtt5: a device deleted while connected is told why (DISCONNECT 0x87)', async () => {
  const c = await RawClient.open(port());
  assert.equal((await c.login('t2', 't2-user', 'pw-2')).reasonCode, 0);
  env.cache.apply({ type: 'sync', revision: ++revision, objects: [], deletes: [{ kind: 'Device', name: 't2' }] });
  env.broker.refresh();
  assert.equal((await c.next('disconnect')).reasonCode, 0x87);
  await c.waitClosed();
});

test('mqtt5: garbage before or after CONNECT, or a second CONNECT, closes that connection only (DISCONNECT 0x81, 0x82)', async () => {
  const http = await RawClient.open(port());
  http.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await http.waitClosed();
  const c = await RawClient.open(port());
  assert.equal((await c.login('t1', 't1-user', 'pw-1')).reasonCode, 0);
  c.sendRaw(Buffer.from([0x30, 0x05, 0xff, 0xff, 0x00, 0x00, 0x00])); // PUBLISH whose topic length overruns it
  assert.equal((await c.next('disconnect')).reasonCode, 0x81);
  await c.waitClosed();
  const twice = await RawClient.open(port());
  assert.equal((await twice.login('t1', 't1-user', 'pw-1')).reasonCode, 0);
  twice.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 't1', clean: true, keepalive: 30 });
  assert.equal((await twice.next('disconnect')).reasonCode, 0x82);
  await twice.waitClosed();
  const ok = await RawClient.open(port());
  assert.equal((await ok.login('t1', 't1-user', 'pw-1')).reasonCode, 0);
  ok.end();
});

test('mqtt5: a CONNECT that 3.1.1 cannot express (password without user name, empty client id with a session expiry) is refused, the agent keeps serving', async () => {
  const noUser = await RawClient.open(port());
  // By hand: mqtt-packet will not generate it. Flags 0x42 = password, clean start; no properties.
  const body = Buffer.from([0, 4, ...Buffer.from('MQTT'), 5, 0x42, 0, 30, 0, 0, 2, ...Buffer.from('t1'), 0, 4, ...Buffer.from('pw-1')]);
  noUser.sendRaw(Buffer.concat([Buffer.from([0x10, body.length]), body]));
  assert.equal((await noUser.next('connack')).reasonCode, 0x86);
  await noUser.waitClosed();
  const noId = await RawClient.open(port());
  noId.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: '', clean: true, keepalive: 30, username: 't1-user', password: Buffer.from('pw-1'), properties: { sessionExpiryInterval: 60 } });
  assert.equal((await noId.next('connack')).reasonCode, 0x85);
  await noId.waitClosed();
  const ok = await RawClient.open(port());
  assert.equal((await ok.login('t1', 't1-user', 'pw-1')).reasonCode, 0);
  ok.end();
});

test('mqtt5: a packet announcing more than the CONNACK maximum packet size ends that connection (0x95) before its body is read', async () => {
  const c = await RawClient.open(port());
  const connack = await c.login('t1', 't1-user', 'pw-1');
  assert.equal(connack.properties?.maximumPacketSize, 256 * 1024);
  // PUBLISH QoS 0 announcing 100 MB (remaining length 0x80 0x80 0x80 0x30), then the first bytes of its topic.
  c.sendRaw(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x30, 0x00, 0x05, 0x61]));
  assert.equal((await c.next('disconnect')).reasonCode, 0x95);
  await c.waitClosed();
  const ok = await RawClient.open(port());
  assert.equal((await ok.login('t1', 't1-user', 'pw-1')).reasonCode, 0);
  ok.end();
});

test('mqtt5: a client silent past its keep-alive is told why (DISCONNECT 0x8d)', async () => {
  const c = await RawClient.open(port());
  c.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: 't1', clean: true, keepalive: 1, username: 't1-user', password: Buffer.from('pw-1') });
  assert.equal((await c.next('connack')).reasonCode, 0);
  // The broker allows 1.5 keep-alive periods of silence.
  assert.equal((await c.next('disconnect', 10_000)).reasonCode, 0x8d);
  await c.waitClosed();
});
