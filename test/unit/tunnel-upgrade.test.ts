import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { isOutpostError } from '../../shared/errors.js';
import { RelayFrame } from '../../shared/tunnel/framed-socket.js';
import { ReadSlabs } from '../../shared/tunnel/read-slabs.js';
import { upgradeOverTcp } from '../../cli/tunnel-upgrade.js';

/** A TCP server that answers the first request head with `answer(head)`. */
async function answering(answer: (head: string, socket: Socket) => void): Promise<{ url: URL; close(): void }> {
  const server = createServer((socket) => {
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) answer(head, socket);
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1/tunnel?kind=logs&instance=a`), close: () => server.close() };
}

const slabs = () => new ReadSlabs({ slabBytes: 1024 * 1024, minRead: 64 * 1024, keepFree: 0 });

test('the request carries the path, the headers and the upgrade; frames sent with the answer arrive after resume()', async () => {
  let seen = '';
  const hub = await answering((head, socket) => {
    seen = head;
    const frame = Buffer.from([RelayFrame.CONTROL, 0, 0, 0, 15, ...Buffer.from('{"type":"opened"}'.slice(0, 15))]);
    socket.write(Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: outpost-stream\r\n\r\n'), frame]));
  });
  try {
    const tunnel = await upgradeOverTcp(hub.url, { Authorization: 'Bearer t0k' }, slabs(), 5000);
    assert.match(seen, /^GET \/api\/v1\/tunnel\?kind=logs&instance=a HTTP\/1\.1\r\n/);
    assert.match(seen, /\r\nAuthorization: Bearer t0k\r\n/);
    assert.match(seen, /\r\nUpgrade: outpost-stream\r\n/);
    const controls: unknown[] = [];
    tunnel.on('control', (m: unknown) => controls.push(m));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(controls, [], 'nothing before resume()');
    tunnel.resume();
    assert.deepEqual(controls, [undefined], 'the frame that came with the answer (its payload is not JSON)');
    tunnel.terminate();
  } finally {
    hub.close();
  }
});

test('refusals: the hub\'s error body, an older hub\'s plain 400, a wrong upgrade, a hub that says nothing', async () => {
  const cases: [(head: string, socket: Socket) => void, (err: unknown) => void][] = [
    [(_h, s) => {
      const body = JSON.stringify({ code: 'OUTPOST_NOT_FOUND', message: 'app nosuch not found' });
      // The body in two writes: it is read to its Content-Length.
      s.write(`HTTP/1.1 404 Tunnel Refused\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`);
      setTimeout(() => s.end(body.slice(10)), 20);
    }, (err) => {
      assert.ok(isOutpostError(err, 'NOT_FOUND'), String(err));
      assert.equal((err as Error).message, 'app nosuch not found');
    }],
    [(_h, s) => s.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 11\r\n\r\nBad Request'), (err) => {
      assert.match((err as Error).message, /hub answered HTTP 400 to the outpost-stream upgrade: is the hub older than this CLI, or is there a proxy that passes only WebSocket upgrades\? \(then set OUTPOST_TUNNEL_PROTOCOL=websocket\)/);
    }],
    [(_h, s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'), (err) => {
      assert.match((err as Error).message, /does not speak outpost-stream \(answered Upgrade: websocket\)/);
    }],
    [(_h, s) => s.end(), (err) => {
      assert.match((err as Error).message, /closed the connection before answering/);
    }],
  ];
  for (const [answer, check] of cases) {
    const hub = await answering(answer);
    try {
      await assert.rejects(upgradeOverTcp(hub.url, {}, slabs(), 5000), (err) => { check(err); return true; });
    } finally {
      hub.close();
    }
  }
});
