import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { LoginLimiter, parseLoginLimit } from '../../edge-agent/devices/login-limiter.js';
import { protocolLevel } from '../../edge-agent/devices/mqtt-sniff.js';
import { redactBrokerUrl } from '../../edge-agent/devices/external-broker.js';
import { connackReason, connectToV4, subscribeRefusal } from '../../edge-agent/devices/mqtt5-translate.js';

const connectBytes = (protocolVersion: 3 | 4 | 5) =>
  mqttPacket.generate({ cmd: 'connect', protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT', protocolVersion, clientId: 'x'.repeat(300), clean: true, keepalive: 10 });

test('mqtt sniff: the protocol level is read from the first bytes of a CONNECT, whole or in pieces', () => {
  for (const v of [3, 4, 5] as const) {
    const bytes = connectBytes(v);
    assert.equal(protocolLevel(bytes), v);
    // A CONNECT over 127 bytes has a 2-byte remaining length; any prefix too short says "need more".
    const levelAt = bytes.indexOf(v, 5);
    for (let n = 0; n <= levelAt; n++) assert.equal(protocolLevel(bytes.subarray(0, n)), undefined, `prefix of ${n} bytes`);
  }
  assert.equal(protocolLevel(Buffer.from('GET / HTTP/1.1\r\n')), null);
  assert.equal(protocolLevel(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01])), null, 'a 5-byte remaining length is not MQTT');
  assert.equal(protocolLevel(Buffer.from([0x10, 0x0a, 0x00, 0x09])), null, 'protocol name of 9 bytes');
});

test('login limiter: a burst of failures, earned back over time, per key', () => {
  let now = 0;
  const limiter = new LoginLimiter({ limit: { failures: 3, perMs: 3_000 }, now: () => now });
  for (let i = 0; i < 3; i++) {
    assert.equal(limiter.limited('a'), false);
    limiter.failed('a');
  }
  assert.equal(limiter.limited('a'), true);
  assert.equal(limiter.limited('b'), false, 'other keys are not affected');
  now += 999;
  assert.equal(limiter.limited('a'), true);
  now += 1;
  assert.equal(limiter.limited('a'), false, 'one failure earned back after perMs / failures');
  limiter.failed('a');
  assert.equal(limiter.limited('a'), true);
  now += 60_000;
  assert.equal(limiter.limited('a'), false);
});

test('login limiter: bounded memory; 0 turns it off', () => {
  let now = 0;
  const limiter = new LoginLimiter({ limit: { failures: 2, perMs: 1_000 }, maxKeys: 100, now: () => now });
  for (let i = 0; i < 1_000; i++) limiter.failed(`k${i}`);
  assert.ok(limiter.size() <= 100);
  now += 10;
  const off = new LoginLimiter({ limit: { failures: 0, perMs: 1_000 } });
  for (let i = 0; i < 10; i++) off.failed('a');
  assert.equal(off.limited('a'), false);
  assert.equal(off.size(), 0);
});

test('login limit flag: n/duration, 0 or off; anything else is named in the error', () => {
  assert.deepEqual(parseLoginLimit('10/1m', '--x'), { failures: 10, perMs: 60_000 });
  assert.deepEqual(parseLoginLimit('5/30s', '--x'), { failures: 5, perMs: 30_000 });
  assert.equal(parseLoginLimit('0', '--x').failures, 0);
  assert.equal(parseLoginLimit('off', '--x').failures, 0);
  for (const bad of ['10', '10/', 'x/1m', '-1/1m', '10/1 m', '10/1d', '1.5/1m', '10/0s']) assert.throws(() => parseLoginLimit(bad, '--mqtt-login-limit'), /--mqtt-login-limit: /, bad);
});

test('mqtt5 translation: session expiry decides clean session; return codes and refused filters map to v5 reasons', () => {
  const base = { cmd: 'connect' as const, clientId: 'd', protocolVersion: 5 as const, keepalive: 30 };
  assert.equal(connectToV4({ ...base, clean: true }).clean, true);
  assert.equal(connectToV4({ ...base, clean: false }).clean, true, 'expiry 0 (the default): the session ends with the connection');
  assert.equal(connectToV4({ ...base, clean: false, properties: { sessionExpiryInterval: 60 } }).clean, false);
  const v4 = connectToV4({ ...base, clean: true, username: 'u', password: Buffer.from('p'), will: { topic: 't', payload: Buffer.from('w'), qos: 1, retain: false, properties: { willDelayInterval: 5 } } });
  assert.deepEqual([v4.protocolVersion, v4.username, v4.will?.properties], [4, 'u', undefined]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map(connackReason), [0, 0x84, 0x85, 0x88, 0x86, 0x87, 0x80]);
  assert.deepEqual(['a/b', 'a/#', 'a/+/c', '$share/g/a'].map(subscribeRefusal), [0x87, 0xa2, 0xa2, 0x9e]);
});

test('--mqtt-url credentials never reach a log line, also when the password holds @ or /', () => {
  assert.equal(redactBrokerUrl('mqtt://agent:s3cret@broker:1883'), 'mqtt://***@broker:1883');
  assert.equal(redactBrokerUrl('mqtt://agent:p@ss@broker:1883'), 'mqtt://***@broker:1883');
  assert.equal(redactBrokerUrl('mqtts://agent:ab/cd@broker:8883'), 'mqtts://***@broker:8883');
  assert.equal(redactBrokerUrl('mqtt://broker:1883'), 'mqtt://broker:1883');
});
