import type { WebSocket } from 'ws';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import type { TunnelMetrics } from './tunnel-metrics.js';

/** CLI-bound bytes the hub buffers per relay before it stops reading the stream. */
const RELAY_HIGH_WATER = 1024 * 1024;

/**
 * Relays one TunnelStream to the operator's WebSocket: binary messages are data both ways, text
 * messages JSON control. Relay-only control: {type:'end'} = the sender writes no more data (CLI:
 * stdin closed; hub: the stream's output ended), {type:'error', code, message} from the hub
 * before it closes the socket. Backpressure both ways: a slow CLI pauses the stream (and so,
 * through credit, the agent); a stream that does not drain pauses the CLI socket.
 */
export function relayStream(ws: WebSocket, stream: TunnelStream, log: Logger, metrics?: TunnelMetrics): void {
  const toEdge = metrics?.bytes.labels({ direction: 'to-edge' });
  const fromEdge = metrics?.bytes.labels({ direction: 'from-edge' });
  let unsent = 0;
  let done = false;
  const sendText = (msg: object) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const finish = (code: number, reason: string) => {
    if (done) return;
    done = true;
    if (ws.readyState === ws.OPEN) ws.close(code, reason);
    setTimeout(() => ws.terminate(), 2000).unref();
  };

  stream.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    fromEdge?.inc(chunk.length);
    unsent += chunk.length;
    ws.send(chunk, { binary: true }, () => {
      unsent -= chunk.length;
      if (stream.isPaused() && unsent < RELAY_HIGH_WATER / 4) stream.resume();
    });
    if (unsent > RELAY_HIGH_WATER) stream.pause();
  });
  stream.on('control', (msg: object) => sendText(msg));
  stream.on('end', () => sendText({ type: 'end' }));
  stream.on('close', () => {
    const err = stream.errored;
    if (err) {
      sendText(isOutpostError(err) ? { type: 'error', code: err.code, message: err.message } : { type: 'error', code: 'OUTPOST_INTERNAL', message: 'stream failed' });
      finish(1011, 'stream failed');
    } else {
      finish(1000, 'stream closed');
    }
  });

  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      toEdge?.inc((data as Buffer).length);
      if (!stream.write(data as Buffer)) {
        ws.pause();
        stream.once('drain', () => ws.resume());
      }
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      msg = undefined;
    }
    if (typeof msg !== 'object' || msg === null || typeof (msg as { type?: unknown }).type !== 'string') {
      sendText({ type: 'error', code: 'OUTPOST_BAD_REQUEST', message: 'text messages must be JSON objects with a string "type"' });
      return;
    }
    if ((msg as { type: string }).type === 'end') stream.end();
    else stream.sendControl(msg);
  });
  ws.on('close', () => {
    done = true;
    // The operator went away: a stream still running is reset (the agent stops its side).
    if (!stream.destroyed) stream.destroy();
  });
  ws.on('error', (err) => log.debug({ err }, 'tunnel relay socket error'));
}
