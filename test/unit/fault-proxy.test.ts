// The chaos harness's fault-injecting TCP proxy, against a real echo server on port 0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { FaultProxy } from '../../chaos/fault-proxy.js';
import { pause, waitFor } from '../helpers/wait.js';

/** A client socket that records what it received and whether it closed. */
interface Client {
  socket: Socket;
  received(): Buffer;
  closed(): boolean;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function dial(port: number): Promise<Client> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let isClosed = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  socket.on('close', () => { isClosed = true; });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed: () => isClosed };
}

async function echoed(client: Client, text: string, timeoutMs = 5000): Promise<void> {
  const before = client.received().length;
  client.socket.write(text);
  await waitFor(() => client.received().subarray(before).toString() === text, { timeoutMs, message: `echo of ${text}` });
}

describe('fault proxy', () => {
  const sockets = new Set<Socket>();
  const echo = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  let echoPort = 0;

  before(async () => {
    echoPort = await listen(echo);
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await close(echo);
  });

  test('pass forwards both ways, also a payload far larger than any buffer', async () => {
    const proxy = new FaultProxy({ targetPort: echoPort });
    await proxy.start();
    try {
      assert.match(proxy.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const c = await dial(proxy.port);
      await echoed(c, 'hello');
      const big = randomBytes(8 * 1024 * 1024);
      const before = c.received().length;
      c.socket.write(big);
      await waitFor(() => c.received().length - before >= big.length, { timeoutMs: 20_000, message: '8 MiB echoed' });
      assert.ok(c.received().subarray(before).equals(big), 'payload intact and in order');
      assert.ok(proxy.stats.bytesUp >= big.length && proxy.stats.bytesDown >= big.length);
      c.socket.destroy();
      await waitFor(() => proxy.activeConnections === 0, { message: 'link closed with its client' });
    } finally {
      await proxy.stop();
    }
  });

  test('cut resets current connections and refuses new ones until restored', async () => {
    const proxy = new FaultProxy({ targetPort: echoPort });
    await proxy.start();
    try {
      const c = await dial(proxy.port);
      await echoed(c, 'before');
      proxy.cut();
      await waitFor(() => c.closed(), { message: 'existing connection closed by the cut' });
      // A new connection is accepted by the kernel, then reset at once: nothing is echoed.
      const d = await dial(proxy.port).catch(() => undefined);
      if (d) {
        d.socket.write('lost');
        await waitFor(() => d.closed(), { message: 'new connection closed while cut' });
        assert.equal(d.received().length, 0);
      }
      assert.ok(proxy.stats.reset >= 1);
      assert.equal(proxy.activeConnections, 0);
      proxy.restore();
      const e = await dial(proxy.port);
      await echoed(e, 'after');
      e.socket.destroy();
    } finally {
      await proxy.stop();
    }
  });

  test('blackhole keeps connections open and forwards nothing, then restore delivers', async () => {
    const proxy = new FaultProxy({ targetPort: echoPort });
    await proxy.start();
    try {
      const c = await dial(proxy.port);
      await echoed(c, 'ping');
      proxy.blackhole();
      c.socket.write('held');
      const d = await dial(proxy.port); // the connect succeeds: half-open, not refused
      d.socket.write('new');
      await pause(400);
      assert.equal(c.received().toString(), 'ping', 'nothing forwarded on an existing link');
      assert.equal(d.received().length, 0, 'nothing forwarded on a link opened during the blackhole');
      assert.ok(!c.closed() && !d.closed(), 'both connections stay open');
      proxy.restore();
      await waitFor(() => c.received().toString() === 'pingheld', { message: 'held bytes delivered after restore' });
      await waitFor(() => d.received().toString() === 'new', { message: 'link opened in the blackhole connected after restore' });
      c.socket.destroy();
      d.socket.destroy();
    } finally {
      await proxy.stop();
    }
  });

  test('an unreachable target closes the client side; the proxy keeps serving', async () => {
    const gone = createServer();
    const deadPort = await listen(gone);
    await close(gone);
    const proxy = new FaultProxy({ targetPort: deadPort });
    await proxy.start();
    try {
      const c = await dial(proxy.port);
      await waitFor(() => c.closed(), { message: 'client closed when the target refuses' });
      assert.ok(proxy.stats.upstreamFailures >= 1);
      // A half-open client that vanishes without a word does not break anything either.
      const d = await dial(proxy.port);
      d.socket.resetAndDestroy();
      await waitFor(() => proxy.activeConnections === 0, { message: 'no link left behind' });
    } finally {
      await proxy.stop();
    }
  });

  test('stop closes every link, in any mode', async () => {
    const proxy = new FaultProxy({ targetPort: echoPort });
    await proxy.start();
    const c = await dial(proxy.port);
    await echoed(c, 'x');
    proxy.blackhole();
    const d = await dial(proxy.port);
    await proxy.stop();
    await waitFor(() => c.closed() && d.closed(), { message: 'clients closed by stop' });
    assert.equal(proxy.activeConnections, 0);
  });
});
