// port-forward handler (issue 8 review): a stream reset while the agent dials leaves no connection.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { portForwardHandler } from '../../edge-agent/tunnel/port-forward-handler.js';
import type { TunnelTargets } from '../../edge-agent/tunnel/tunnel-targets.js';
import { TunnelStream, type StreamPort } from '../../shared/tunnel/tunnel-stream.js';
import { within } from '../helpers/wait.js';

const port: StreamPort = { wake: () => undefined, grant: () => undefined, reset: () => undefined, released: () => undefined };

test('a stream reset during the dial: the connection to the target is closed, not leaked', async () => {
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  try {
    const targets = { dialAddress: () => ({ host: '127.0.0.1', port: address.port }) } as unknown as TunnelTargets;
    const open = { kind: 'port-forward' as const, target: { instance: 'web-0', port: address.port }, params: {}, streamId: 1 };
    const stream = new TunnelStream(1, open, port);
    const handled = portForwardHandler(targets)(open, stream);
    // The hub resets the stream while the connect is under way.
    stream.reset('OUTPOST_CANCELLED', 'operator went away');
    await within(Promise.resolve(handled), 5_000, 'the handler');
    const conn = await within((async () => {
      for (let i = 0; i < 200 && accepted.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      return accepted[0];
    })(), 5_000, 'the server to see the connection');
    assert.ok(conn, 'the agent dialled');
    await within(once(conn, 'close'), 5_000, 'the connection to close (it leaked without the fix)');
  } finally {
    for (const s of accepted) s.destroy();
    server.close();
  }
});
