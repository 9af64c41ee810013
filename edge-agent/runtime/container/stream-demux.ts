/**
 * Splits the engine's multiplexed stdout/stderr stream (containers without a TTY): frames of an
 * 8-byte header (stream type, 3 zero bytes, big-endian payload length) followed by the payload.
 * Bytes arrive in arbitrary chunks; a frame may span several.
 */
export class StreamDemux {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (stream: 'stdout' | 'stderr', payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (this.pending.length - offset >= 8) {
      const type = this.pending[offset];
      const size = this.pending.readUInt32BE(offset + 4);
      if (this.pending.length - offset - 8 < size) break;
      const payload = this.pending.subarray(offset + 8, offset + 8 + size);
      this.onFrame(type === 2 ? 'stderr' : 'stdout', payload);
      offset += 8 + size;
    }
    this.pending = offset === 0 ? this.pending : this.pending.subarray(offset);
  }
}
