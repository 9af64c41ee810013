import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { PacketLengthTracker } from '../../edge-agent/devices/mqtt-packet-limit.js';

const publish = (payloadBytes: number) => mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.alloc(payloadBytes, 1), qos: 0, retain: false, dup: false });

test('packet length tracker: packets within the limit pass whole, byte by byte and packed together', () => {
  const stream = Buffer.concat([publish(10), publish(200), publish(0), publish(995)]); // the last: remaining length 2 + 3 + 995 = 1000, the limit
  assert.equal(new PacketLengthTracker(1000).feed(stream), -1);
  const oneByOne = new PacketLengthTracker(1000);
  for (const b of stream) assert.equal(oneByOne.feed(Buffer.from([b])), -1);
});

test('packet length tracker: the first packet over the limit is reported by its announced length, even after splits', () => {
  const stream = Buffer.concat([publish(10), publish(996)]); // remaining length 1001
  assert.equal(new PacketLengthTracker(1000).feed(stream), 1001);
  const split = new PacketLengthTracker(1000);
  const cut = publish(10).length + 2; // inside the second packet's 2-byte length
  assert.equal(split.feed(stream.subarray(0, cut)), -1);
  assert.equal(split.feed(stream.subarray(cut)), 1001);
});

test('packet length tracker: a 10 MB header is reported before any body byte; a 5-byte length is malformed (Infinity)', () => {
  assert.equal(new PacketLengthTracker(256 * 1024).feed(Buffer.from([0x30, 0x80, 0xad, 0xe2, 0x04])), 10_000_000);
  assert.equal(new PacketLengthTracker(256 * 1024).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])), Infinity);
  // 268 435 455, the largest length MQTT can announce, is still reported as a number.
  assert.equal(new PacketLengthTracker(256 * 1024).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])), 268_435_455);
});
