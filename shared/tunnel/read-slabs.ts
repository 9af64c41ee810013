/**
 * Read buffers for net's `onread` on a bulk data path: each socket read lands in a large slab
 * (one syscall per up to `maxRead` bytes, no Buffer allocated per read), and a slab whose pieces
 * were all released is used again. Reuse is what keeps a stream of hundreds of MB/s from
 * allocating that many bytes of ArrayBuffers: V8 counts them as external memory and answers with
 * a full mark-compact every few tens of MB (measured: 40-70 per GiB in each tunnel process).
 *
 * A piece from take() is valid until the caller returns, unless retained: retain(piece) holds
 * its slab from reuse until the returned function runs. With `keepFree` 0 no slab is reused and
 * pieces stay valid without retain (for consumers that keep data in ways hard to track).
 */
export class ReadSlabs {
  private slab: Slab;
  private at = 0;
  private readonly free: Slab[] = [];
  private readonly bySlab = new WeakMap<ArrayBufferLike, Slab>();

  constructor(private readonly o: {
    /** Bytes per slab. */
    slabBytes: number;
    /** A read gets at least this much room (else the next slab is taken). */
    minRead: number;
    /** At most this much room per read. Default: the rest of the slab. */
    maxRead?: number;
    /** Bytes kept free in front of every read (a frame header written later). Default 0. */
    headroom?: number;
    /** Released slabs kept for reuse; 0: never reuse. */
    keepFree: number;
  }) {
    this.slab = this.newSlab();
  }

  /** onread `buffer`: where the next read goes. */
  next(): Buffer {
    const headroom = this.o.headroom ?? 0;
    if (this.slab.buf.length - this.at - headroom < this.o.minRead) this.switchSlab();
    const start = this.at + headroom;
    const end = this.o.maxRead === undefined ? this.slab.buf.length : Math.min(this.slab.buf.length, start + this.o.maxRead);
    return this.slab.buf.subarray(start, end);
  }

  /** onread `callback`: the `n` bytes just read, after their headroom. */
  take(n: number): Buffer {
    const piece = this.slab.buf.subarray(this.at, this.at + (this.o.headroom ?? 0) + n);
    this.at += piece.length;
    return piece;
  }

  /** Keeps the slab under `piece` from reuse until the returned function runs (once). */
  retain(piece: Buffer): () => void {
    const slab = this.bySlab.get(piece.buffer);
    if (!slab || this.o.keepFree === 0) return noop;
    slab.refs++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.unref(slab);
    };
  }

  private switchSlab(): void {
    const old = this.slab;
    this.slab = this.free.pop() ?? this.newSlab();
    this.slab.refs = 1; // the reader's own
    this.at = 0;
    this.unref(old);
  }

  private unref(slab: Slab): void {
    slab.refs--;
    if (slab.refs === 0 && this.free.length < this.o.keepFree) this.free.push(slab);
  }

  private newSlab(): Slab {
    const slab = { buf: Buffer.allocUnsafeSlow(this.o.slabBytes), refs: 1 };
    this.bySlab.set(slab.buf.buffer, slab);
    return slab;
  }
}

interface Slab {
  buf: Buffer;
  /** The reader's while current, plus one per retain not yet released. */
  refs: number;
}

function noop(): void {}
