import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { isOutpostError } from '../../shared/errors.js';
import { ABNORMAL_CLOSE, FramedSocket, RelayFrame } from '../../shared/tunnel/framed-socket.js';
import { ReadSlabs } from '../../shared/tunnel/read-slabs.js';
import { waitFor } from '../helpers/wait.js';

function frame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(5);
  header[0] = type;
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** A Duplex that records what is written to it and is fed by hand. */
function sink(): { duplex: Duplex; written: Buffer[] } {
  const written: Buffer[] = [];
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
  });
  return { duplex, written };
}

test('frames split at every byte boundary parse to the same data, controls, pong and close', () => {
  const data = Buffer.from('0123456789abcdef'.repeat(40));
  const wire = Buffer.concat([
    frame(RelayFrame.CONTROL, JSON.stringify({ type: 'opened', node: 'n1' })),
    frame(RelayFrame.DATA, data.subarray(0, 300)),
    frame(RelayFrame.PING),
    frame(RelayFrame.DATA, data.subarray(300)),
    frame(RelayFrame.CONTROL, '{not json'),
    frame(RelayFrame.CLOSE, Buffer.from([0x03, 0xe8])),
  ]);
  for (const split of [1, 2, 3, 5, 7, 64, 301, wire.length]) {
    const { duplex, written } = sink();
    const f = new FramedSocket(duplex);
    const got: Buffer[] = [];
    const controls: unknown[] = [];
    f.on('data', (d: Buffer) => got.push(Buffer.from(d)));
    f.on('control', (m: unknown) => controls.push(m));
    for (let at = 0; at < wire.length; at += split) f.feed(wire.subarray(at, at + split));
    assert.deepEqual(Buffer.concat(got), data, `data, split every ${split}`);
    assert.deepEqual(controls, [{ type: 'opened', node: 'n1' }, undefined], `controls, split every ${split}`);
    const out = Buffer.concat(written);
    // A PONG for the PING, then CLOSE 1000 echoed back.
    assert.deepEqual(out.subarray(0, 5), frame(RelayFrame.PONG), `pong, split every ${split}`);
    assert.equal(out[5], RelayFrame.CLOSE);
    assert.equal(out.readUInt16BE(10), 1000);
    assert.equal(f.open, false);
  }
});

test('a malformed frame is an error naming it, and ends the connection', () => {
  const cases: [Buffer, RegExp][] = [
    [frame(9, 'x'), /unknown frame type 9/],
    [frame(RelayFrame.PING, 'x'), /PING and PONG frames carry no payload/],
    [Buffer.from([RelayFrame.CONTROL, 0x01, 0, 0, 0]), /exceeds 65536/],
    [Buffer.from([RelayFrame.DATA, 0xff, 0xff, 0xff, 0xff]), /DATA frame of 4294967295 bytes/],
  ];
  for (const [bytes, message] of cases) {
    const { duplex } = sink();
    const f = new FramedSocket(duplex);
    const errors: Error[] = [];
    f.on('error', (e: Error) => errors.push(e));
    f.on('data', () => assert.fail('no data from a bad frame'));
    f.feed(bytes);
    assert.equal(errors.length, 1);
    assert.ok(isOutpostError(errors[0], 'PROTOCOL'));
    assert.match(errors[0]!.message, message);
    assert.equal(duplex.destroyed, true);
  }
});

test('paused: the rest of a read is held, and the peer\'s end and close wait for resume()', async () => {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.end(Buffer.concat([frame(RelayFrame.DATA, 'first'), frame(RelayFrame.DATA, 'second'), frame(RelayFrame.CONTROL, '{"type":"exit","code":3}'), frame(RelayFrame.CLOSE, Buffer.from([0x03, 0xe8]))]));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const socket = connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const f = new FramedSocket(socket);
  const events: string[] = [];
  f.on('data', (d: Buffer) => {
    events.push(`data ${d.toString()}`);
    f.pause(); // the consumer is full after every piece
  });
  f.on('control', (m: { type: string; code: number }) => events.push(`${m.type} ${m.code}`));
  f.on('close', (code: number) => events.push(`close ${code}`));
  await waitFor(() => events.length === 1, { timeoutMs: 5000, message: 'first piece' });
  // The socket has ended and closed meanwhile; nothing more came out.
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(events, ['data first']);
  f.resume();
  assert.deepEqual(events, ['data first', 'data second']);
  f.resume();
  await waitFor(() => events.includes('close 1000'), { timeoutMs: 5000, message: 'close after resume' });
  assert.deepEqual(events, ['data first', 'data second', 'exit 3', 'close 1000']);
  server.close();
});

test('a connection that ends without CLOSE closes as abnormal (1006); terminate() drops held data', async () => {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const f = new FramedSocket(socket);
  const closed = once(f, 'close');
  await waitFor(() => sockets.length === 1, { timeoutMs: 5000, message: 'accepted' });
  sockets[0]!.destroy();
  assert.deepEqual(await closed, [ABNORMAL_CLOSE]);
  server.close();
});

test('read slabs: a slab is reused only after every retained piece was released', () => {
  const slabs = new ReadSlabs({ slabBytes: 64, minRead: 16, keepFree: 2 });
  const fill = (n: number, byte: number) => {
    slabs.next().fill(byte, 0, n);
    return slabs.take(n);
  };
  const a = fill(40, 0x61);
  const releaseA = slabs.retain(a);
  fill(20, 0x62); // 4 bytes left: the next read takes a new slab
  const c = fill(40, 0x63);
  assert.notEqual(c.buffer, a.buffer);
  fill(20, 0x64);
  const e = fill(10, 0x65); // the first slab is still retained: a third one is made
  assert.notEqual(e.buffer, a.buffer);
  assert.notEqual(e.buffer, c.buffer);
  assert.ok(a.every((b) => b === 0x61), 'retained bytes untouched');
  releaseA();
  releaseA(); // twice is harmless
  fill(50, 0x66);
  const g = fill(10, 0x67); // switches: the first slab is free now and comes back
  assert.equal(g.buffer, a.buffer, 'the released slab is reused');

  const fresh = new ReadSlabs({ slabBytes: 64, minRead: 16, keepFree: 0 });
  const seen = new Set<ArrayBufferLike>();
  for (let i = 0; i < 10; i++) {
    fresh.next();
    const p = fresh.take(50);
    fresh.retain(p)();
    seen.add(p.buffer);
  }
  assert.equal(seen.size, 10, 'keepFree 0: never reused');
});

test('headroom: each read lands after room for a header, and take() includes it', () => {
  const slabs = new ReadSlabs({ slabBytes: 100, minRead: 10, maxRead: 20, headroom: 5, keepFree: 1 });
  const room = slabs.next();
  assert.equal(room.length, 20);
  room.fill(0x78, 0, 7);
  const piece = slabs.take(7);
  assert.equal(piece.length, 12);
  assert.equal(piece.subarray(5).toString(), 'xxxxxxx');
  assert.equal(room.byteOffset - piece.byteOffset, 5);
});

test('random bytes never throw: each stream either parses or ends with a PROTOCOL error', () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let errors = 0;
  for (let round = 0; round < 500; round++) {
    const { duplex } = sink();
    const f = new FramedSocket(duplex);
    f.on('error', (e: Error) => {
      assert.ok(isOutpostError(e, 'PROTOCOL'), `round ${round}: ${e.message}`);
      errors++;
    });
    f.on('data', () => undefined);
    f.on('control', () => undefined);
    // Mostly valid headers with random types and lengths, then random payload bytes.
    const bytes = Buffer.alloc(rand(300));
    for (let i = 0; i < bytes.length; i++) bytes[i] = rand(256);
    if (bytes.length >= 5 && rand(2) === 0) {
      bytes[0] = 1 + rand(6);
      bytes.writeUInt32BE(rand(200), 1);
    }
    for (let at = 0; at < bytes.length;) {
      const n = 1 + rand(40);
      assert.doesNotThrow(() => f.feed(bytes.subarray(at, at + n)), `round ${round}`);
      at += n;
    }
  }
  assert.ok(errors > 0, 'some rounds were malformed');
});
