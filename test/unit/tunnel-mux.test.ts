import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { StreamMux, type OpenHandler } from '../../shared/tunnel/stream-mux.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import { isOutpostError, OutpostError } from '../../shared/errors.js';
import { waitFor } from '../helpers/wait.js';
import { MAX_STREAM_CHUNK_BYTES, SOCKET_HIGH_WATER_BYTES, STREAM_HEADER_BYTES, STREAM_WINDOW_BYTES, StreamFrameType, encodeStreamFrame } from '../../shared/protocol/streams.js';

/** A hub mux and an agent mux wired back to back; frames cross asynchronously like a socket. */
function pair(onOpen: OpenHandler, maxStreams = 4) {
  let hub: StreamMux | undefined;
  let agent: StreamMux | undefined;
  const deliver = (to: () => StreamMux | undefined) => (frame: Buffer, done: () => void) => {
    setImmediate(() => { to()?.receive(frame); done(); });
  };
  hub = new StreamMux({ send: deliver(() => agent) }, { role: 'hub', maxStreams, openTimeoutMs: 2000 });
  agent = new StreamMux({ send: deliver(() => hub) }, { role: 'agent', maxStreams }, onOpen);
  return { hub, agent };
}

const echo: OpenHandler = (_open, stream) => { stream.pipe(stream); };

test('data, control and end cross in order; the stream closes both ways', async () => {
  let agentSide: TunnelStream | undefined;
  const { hub } = pair((open, stream) => {
    agentSide = stream;
    stream.on('control', (m: { type: string }) => { if (m.type === 'ping') stream.sendControl({ type: 'pong' }); });
    stream.on('data', (d: Buffer) => stream.write(d));
    stream.on('end', () => { stream.sendControl({ type: 'exit', code: 3 }); stream.end(); });
    assert.equal(open.kind, 'exec');
  });
  const s = await hub.open({ kind: 'exec', target: { instance: 'a-1' }, params: {} });
  const got: Buffer[] = [];
  const controls: unknown[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  s.on('control', (m) => controls.push(m));
  s.write('hello ');
  s.sendControl({ type: 'ping' });
  s.end('world');
  await once(s, 'close');
  assert.equal(Buffer.concat(got).toString(), 'hello world');
  assert.deepEqual(controls, [{ type: 'pong' }, { type: 'exit', code: 3 }]);
  assert.ok(agentSide);
  assert.equal(hub.size, 0);
});

test('a refusal rejects the open with the agent\'s code', async () => {
  const { hub } = pair(() => { throw new OutpostError('NOT_FOUND', 'instance x-9 is not running on this node'); });
  await assert.rejects(hub.open({ kind: 'logs', target: { instance: 'x-9' }, params: {} }), (err) => isOutpostError(err, 'NOT_FOUND') && /x-9/.test(err.message));
});

test('a bad open (no target) is refused with BAD_REQUEST; the stream limit holds on the hub', async () => {
  const { hub } = pair(echo, 2);
  await assert.rejects(hub.open({ kind: 'logs', target: {}, params: {} }), (err) => isOutpostError(err, 'BAD_REQUEST'));
  const a = await hub.open({ kind: 'port-forward', target: { instance: 'a-1', port: 80 }, params: {} });
  const b = await hub.open({ kind: 'port-forward', target: { instance: 'a-1', port: 80 }, params: {} });
  await assert.rejects(hub.open({ kind: 'port-forward', target: { instance: 'a-1', port: 80 }, params: {} }), (err) => isOutpostError(err, 'STREAM_LIMIT'));
  a.destroy();
  b.destroy();
});

test('a reader that does not read stalls only its own stream (credit), and resumes', async () => {
  const { hub } = pair((_open, stream) => {
    // The agent writes as fast as credit allows.
    const chunk = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const more = () => {
      while (sent < 8 * STREAM_WINDOW_BYTES) {
        sent += chunk.length;
        if (!stream.write(chunk)) return void stream.once('drain', more);
      }
      stream.end();
    };
    more();
  });
  const slow = await hub.open({ kind: 'logs', target: { instance: 'slow-1' }, params: {} });
  const fast = await hub.open({ kind: 'logs', target: { instance: 'fast-1' }, params: {} });
  slow.pause();
  let fastBytes = 0;
  fast.on('data', (d: Buffer) => { fastBytes += d.length; });
  await once(fast, 'end');
  assert.equal(fastBytes, 8 * STREAM_WINDOW_BYTES);
  // The paused stream got at most its window plus what its Readable buffers.
  assert.ok(slow.readableLength <= STREAM_WINDOW_BYTES + 64 * 1024, `slow stream buffered ${slow.readableLength}`);
  let slowBytes = 0;
  slow.on('data', (d: Buffer) => { slowBytes += d.length; });
  slow.resume();
  await once(slow, 'end');
  assert.equal(slowBytes, 8 * STREAM_WINDOW_BYTES);
});

test('closing the session ends every stream with its error', async () => {
  const { hub } = pair(() => undefined);
  const s = await hub.open({ kind: 'logs', target: { instance: 'a-1' }, params: {} });
  const err = once(s, 'error');
  hub.closeAll(new OutpostError('NODE_DISCONNECTED', 'site/n1 disconnected'));
  const [e] = await err;
  assert.ok(isOutpostError(e, 'NODE_DISCONNECTED'));
  await assert.rejects(hub.open({ kind: 'logs', target: { instance: 'a-1' }, params: {} }), (x) => isOutpostError(x, 'NODE_DISCONNECTED'));
});

test('stream data never holds more than the high-water mark on a slow socket; credit and resets pass it', async () => {
  // A socket that writes nothing until told: the mux must stop handing it data.
  const held: { frame: Buffer; done: () => void }[] = [];
  let agent: StreamMux | undefined;
  const hub = new StreamMux({ send: (frame, done) => setImmediate(() => { agent?.receive(frame); done(); }) }, { role: 'hub', maxStreams: 4 });
  agent = new StreamMux({ send: (frame, done) => held.push({ frame, done }) }, { role: 'agent', maxStreams: 4 }, (_open, stream) => {
    stream.write(Buffer.alloc(STREAM_WINDOW_BYTES, 1));
  });
  const opening = hub.open({ kind: 'logs', target: { instance: 'a-1' }, params: {} });
  // ACCEPT is held too: release frames one by one as a socket would, checking what is queued.
  const unsentData = () => held.filter((h) => h.frame[0] === 3).reduce((n, h) => n + h.frame.length, 0);
  await waitFor(() => unsentData() > 0, { timeoutMs: 5000, message: 'stream data queued on the socket' });
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(unsentData() <= SOCKET_HIGH_WATER_BYTES + MAX_STREAM_CHUNK_BYTES + STREAM_HEADER_BYTES, `unsent stream data ${unsentData()}`);
  const release = () => { const h = held.shift(); if (h) setImmediate(() => { hub.receive(h.frame); h.done(); }); };
  while (held.length > 0) {
    release();
    await new Promise((r) => setImmediate(r));
    assert.ok(unsentData() <= SOCKET_HIGH_WATER_BYTES + MAX_STREAM_CHUNK_BYTES + STREAM_HEADER_BYTES);
  }
  const s = await opening;
  s.destroy();
});

test('a malformed CONTROL payload resets only its stream: the mux does not throw (which ends the session)', async () => {
  const agentSides: TunnelStream[] = [];
  const { hub, agent } = pair((_open, stream) => { agentSides.push(stream); stream.pipe(stream); });
  const bad = await hub.open({ kind: 'exec', target: { instance: 'a-1' }, params: {} });
  const good = await hub.open({ kind: 'exec', target: { instance: 'a-2' }, params: {} });
  // Oversized (an operator's 20 KiB text message relayed as a control) and not an object.
  assert.doesNotThrow(() => agent.receive(encodeStreamFrame(StreamFrameType.CONTROL, bad.id, Buffer.from(JSON.stringify({ type: 'resize', pad: 'x'.repeat(20_000) })))));
  assert.doesNotThrow(() => agent.receive(encodeStreamFrame(StreamFrameType.CONTROL, good.id + 1000, Buffer.from('[1]'))));
  await waitFor(() => bad.destroyed, { timeoutMs: 5000, message: 'the bad stream reset' });
  assert.ok(isOutpostError(bad.errored, 'PROTOCOL'), `bad stream reset with PROTOCOL, got ${String(bad.errored)}`);
  const echoed: Buffer[] = [];
  good.on('data', (d: Buffer) => echoed.push(d));
  good.end('still here');
  await waitFor(() => Buffer.concat(echoed).toString() === 'still here', { timeoutMs: 5000, message: 'the other stream still works' });
  good.destroy();
});

test('writeFrame: frames go out without a copy, split when credit is short, in order with control and end; frameDrain after backpressure', async () => {
  const chunk = 100 * 1024; // does not divide the window: credit runs out mid-frame
  const count = 62;
  const written = new Set<Buffer>();
  const sentData: Buffer[] = [];
  let refused = false;
  let drained = false;
  let agent: StreamMux | undefined;
  const hub = new StreamMux({ send: (frame, done) => setImmediate(() => { agent?.receive(frame); done(); }) }, { role: 'hub', maxStreams: 4 });
  agent = new StreamMux({
    send: (frame, done) => {
      if (frame[0] === StreamFrameType.DATA) sentData.push(frame);
      setImmediate(() => { hub.receive(frame); done(); });
    },
  }, { role: 'agent', maxStreams: 4 }, (_open, stream) => {
    let n = 0;
    const more = () => {
      while (n < count) {
        const frame = Buffer.alloc(STREAM_HEADER_BYTES + chunk, n % 251);
        written.add(frame);
        n++;
        if (!stream.writeFrame(frame)) {
          refused = true;
          return void stream.once('frameDrain', () => { drained = true; more(); });
        }
      }
      stream.sendControl({ type: 'done' });
      stream.end();
    };
    more();
  });
  const s = await hub.open({ kind: 'port-forward', target: { instance: 'a-1', port: 80 }, params: {} });
  s.pause();
  const got: Buffer[] = [];
  let bytes = 0;
  let bytesAtControl = -1;
  s.on('data', (d: Buffer) => { got.push(d); bytes += d.length; });
  s.on('control', () => { bytesAtControl = bytes; });
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(refused, 'writeFrame refused more once the stream had no credit');
  s.resume();
  await once(s, 'end');
  const all = Buffer.concat(got);
  assert.equal(all.length, count * chunk);
  for (let i = 0; i < count; i++) {
    assert.equal(all[i * chunk], i % 251, `frame ${i} starts in place`);
    assert.equal(all[(i + 1) * chunk - 1], i % 251, `frame ${i} ends in place`);
  }
  assert.equal(bytesAtControl, count * chunk, 'the control came after all data');
  assert.ok(drained, 'frameDrain let the writer go on');
  const asWritten = sentData.filter((f) => written.has(f)).length;
  assert.ok(asWritten >= count / 2, `${asWritten} of ${sentData.length} DATA frames went out as written (no copy)`);
  assert.ok(asWritten < sentData.length, 'some frame was split for credit');
  s.destroy();
});
