import type { Duplex } from 'node:stream';

/** Largest remaining length (bytes) of a packet a device may send, MQTT 3.1.1 and 5 alike: 256 KiB. */
export const DEFAULT_MAX_PACKET_BYTES = 256 * 1024;

/**
 * Follows the packet boundaries of an MQTT byte stream by reading only each packet's fixed header
 * (type byte, remaining-length varint) and skipping its body by count: no parse, no copy. `feed`
 * returns the first announced length above the limit (Infinity for a varint longer than the 4 bytes
 * MQTT allows), or -1 while every packet so far is within it.
 */
export class PacketLengthTracker {
  /** Body bytes of the current packet not seen yet. */
  private skip = 0;
  /** 0: next byte is a type byte; 1-4: reading the varint, this many bytes read. */
  private lengthBytes = 0;
  private length = 0;
  private multiplier = 1;

  constructor(private readonly maxBytes: number) {}

  feed(chunk: Uint8Array): number {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      const b = chunk[pos++]!;
      if (this.lengthBytes === 0) {
        this.lengthBytes = 1;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (b & 0x80) {
        if (++this.lengthBytes > 4) return Infinity;
        continue;
      }
      this.lengthBytes = 0;
      if (this.length > this.maxBytes) return this.length;
      this.skip = this.length;
    }
    return -1;
  }
}

export interface PacketLimitOptions {
  maxBytes: number;
  /** Called once, before the stream is destroyed, with the announced length (Infinity: malformed length). */
  onTooLarge: (announced: number) => void;
}

/**
 * Checks every chunk `stream` receives from now on, before it is buffered for its reader: the
 * stream's own `push` is wrapped, so aedes keeps reading and writing the socket itself (a Transform
 * in between would add a stream hop per chunk each way, and aedes needs one duplex for both). A
 * packet announcing more than the limit destroys the stream before its body is held. Installed
 * before the first byte is read, so no chunk reaches the stream's buffer unchecked. Returns `detach`,
 * which restores the original push (for connections another parser limits).
 */
export function limitPacketSize(stream: Duplex, options: PacketLimitOptions): () => void {
  const tracker = new PacketLengthTracker(options.maxBytes);
  const push = stream.push;
  const guarded = function (this: Duplex, chunk: unknown, encoding?: BufferEncoding): boolean {
    // null ends the stream; the byte streams the broker gets carry no strings.
    if (chunk instanceof Uint8Array) {
      const announced = tracker.feed(chunk);
      if (announced >= 0) {
        stream.push = push;
        options.onTooLarge(announced);
        stream.destroy();
        return false;
      }
    }
    return push.call(this, chunk, encoding);
  };
  stream.push = guarded;
  return () => {
    if (stream.push === guarded) stream.push = push;
  };
}
