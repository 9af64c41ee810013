import { connect, type OnReadOpts, type Socket } from 'node:net';
import { OutpostError } from '../../shared/errors.js';
import { STREAM_HEADER_BYTES } from '../../shared/protocol/streams.js';
import { ReadSlabs } from '../../shared/tunnel/read-slabs.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import type { StreamHandler } from './agent-tunnel.js';
import type { TunnelTargets } from './tunnel-targets.js';

const CONNECT_TIMEOUT_MS = 10_000;
/**
 * One read into a frame: a payload that makes the WebSocket frame on the wire exactly 64 KiB (8
 * bytes of client frame header for this length: 2, 2 of extended length, 4 of mask key; then our
 * 5). The hub reads its sockets 64 KiB at a time, and ws hands a frame that lies within one read
 * to the hub without copying it; 256 KiB frames were always copied (bench tunnel: 478-484 ->
 * 560-653 MB/s in alternating pairs).
 */
const READ_BYTES = 64 * 1024 - 8 - STREAM_HEADER_BYTES;
/** Reads go into slabs of sixteen full frames; a read gets at least this much room. */
const SLAB_BYTES = 16 * (STREAM_HEADER_BYTES + READ_BYTES);
const MIN_READ_BYTES = 16 * 1024;
/** Written-out slabs kept for reuse: about the stream's credit window and socket queue. */
const KEEP_FREE_SLABS = 4;

/**
 * Reads the target's bytes straight into DATA frames: each socket read lands in a slab right
 * after STREAM_HEADER_BYTES of room, and that slice goes to the stream as a whole frame
 * (TunnelStream.writeFrame): no copy into a new frame, no Buffer per read, no Readable
 * machinery. A slab is reused once every frame in it was written out (shared/tunnel/read-slabs.ts).
 */
class FrameReader {
  private readonly slabs = new ReadSlabs({ slabBytes: SLAB_BYTES, minRead: MIN_READ_BYTES, maxRead: READ_BYTES, headroom: STREAM_HEADER_BYTES, keepFree: KEEP_FREE_SLABS });
  private stream: TunnelStream | undefined;
  /** Frames read before the stream was attached (the target spoke first, during the dial). */
  private readonly early: Buffer[] = [];

  readonly onread: OnReadOpts = {
    buffer: () => this.slabs.next(),
    callback: (nread: number) => {
      const frame = this.slabs.take(nread);
      if (!this.stream) {
        // Kept until attached; never released, so its slab is not reused (a rare case).
        this.early.push(frame);
        this.slabs.retain(frame);
        return true;
      }
      // false: the stream's queue is full; net stops reading until socket.resume().
      return this.stream.writeFrame(frame, this.slabs.retain(frame));
    },
  };

  attach(socket: Socket, stream: TunnelStream): void {
    this.stream = stream;
    stream.on('frameDrain', () => socket.resume());
    for (const frame of this.early.splice(0)) if (!stream.writeFrame(frame)) socket.pause();
  }
}

/**
 * port-forward and http streams: one TCP connection per stream to the instance's port (or an
 * allowed address), bytes copied both ways with backpressure, half-close passed on.
 */
export function portForwardHandler(targets: TunnelTargets): StreamHandler {
  return async (open, stream) => {
    const { host, port } = targets.dialAddress(open.target);
    const reader = new FrameReader();
    const socket = await dial(host, port, reader.onread);
    // The stream may have been reset (or its session lost) while the agent dialled: nothing
    // would ever close this connection.
    if (stream.destroyed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.on('error', (err) => stream.reset('OUTPOST_UNAVAILABLE', `connection to ${host}:${port} failed: ${err.message}`));
    stream.on('close', () => socket.destroy());
    stream.pipe(socket);
    // Target -> stream: frames straight from the socket's reads; its end is the stream's end.
    reader.attach(socket, stream);
    socket.once('end', () => stream.end());
  };
}

function dial(host: string, port: number, onread: OnReadOpts): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true, onread });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new OutpostError('UNAVAILABLE', `connecting to ${host}:${port} timed out after ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new OutpostError('UNAVAILABLE', `cannot connect to ${host}:${port} on the node: ${err.code ?? err.message}`));
    });
  });
}
