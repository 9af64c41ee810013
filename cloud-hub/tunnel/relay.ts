import type { EventEmitter } from 'node:events';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import type { TunnelMetrics } from './tunnel-metrics.js';

/**
 * The operator's connection a stream is relayed to: a FramedSocket (the CLI's `outpost-stream`
 * upgrade) or a WebSocketPeer (other clients). Events: 'data' (Buffer), 'control'
 * (parsed JSON, undefined when not JSON), 'drain' (after sendData returned false), 'close', 'error'.
 */
export interface RelayPeer extends EventEmitter {
  readonly open: boolean;
  /** false: more than the peer's high water is unsent; 'drain' follows. */
  sendData(chunk: Buffer): boolean;
  sendControl(msg: object): void;
  /** Ends the connection after what was sent (1000 clean, 1011 the stream failed). */
  close(code: number, reason: string): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

/**
 * Relays one TunnelStream to the operator's connection: data both ways, JSON control messages
 * both ways. Relay-only control: {type:'end'} = the sender writes no more data (CLI: stdin
 * closed; hub: the stream's output ended), {type:'error', code, message} from the hub before it
 * closes. Backpressure both ways: a slow operator pauses the stream (and so, through credit, the
 * agent); a stream that does not drain pauses the operator's connection.
 */
export function relayStream(peer: RelayPeer, stream: TunnelStream, log: Logger, metrics?: TunnelMetrics): void {
  const toEdge = metrics?.bytes.labels({ direction: 'to-edge' });
  const fromEdge = metrics?.bytes.labels({ direction: 'from-edge' });
  let done = false;
  const finish = (code: number, reason: string) => {
    if (done) return;
    done = true;
    peer.close(code, reason);
    setTimeout(() => peer.terminate(), 2000).unref();
  };

  stream.on('data', (chunk: Buffer) => {
    if (!peer.open) return;
    fromEdge?.inc(chunk.length);
    if (!peer.sendData(chunk)) stream.pause();
  });
  peer.on('drain', () => stream.resume());
  stream.on('control', (msg: object) => peer.sendControl(msg));
  stream.on('end', () => peer.sendControl({ type: 'end' }));
  stream.on('close', () => {
    const err = stream.errored;
    if (err) {
      peer.sendControl(isOutpostError(err) ? { type: 'error', code: err.code, message: err.message } : { type: 'error', code: 'OUTPOST_INTERNAL', message: 'stream failed' });
      finish(1011, 'stream failed');
    } else {
      finish(1000, 'stream closed');
    }
  });

  peer.on('data', (chunk: Buffer) => {
    toEdge?.inc(chunk.length);
    if (!stream.write(chunk)) {
      peer.pause();
      stream.once('drain', () => peer.resume());
    }
  });
  peer.on('control', (msg: unknown) => {
    if (typeof msg !== 'object' || msg === null || typeof (msg as { type?: unknown }).type !== 'string') {
      peer.sendControl({ type: 'error', code: 'OUTPOST_BAD_REQUEST', message: 'control messages must be JSON objects with a string "type"' });
      return;
    }
    if ((msg as { type: string }).type === 'end') stream.end();
    else stream.sendControl(msg);
  });
  peer.on('close', () => {
    done = true;
    // The operator went away: a stream still running is reset (the agent stops its side).
    if (!stream.destroyed) stream.destroy();
  });
  peer.on('error', (err: Error) => log.debug({ err }, 'tunnel relay connection error'));
}
