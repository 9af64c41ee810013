import { Duplex } from 'node:stream';
import { fromErrorBody, isOutpostError, OutpostError, type ErrorBody } from '../errors.js';
import { MAX_STREAM_CHUNK_BYTES, STREAM_HEADER_BYTES, STREAM_WINDOW_BYTES, type ControlMessage, type OpenRequest, type ResetBody } from '../protocol/streams.js';

/**
 * One queued outgoing item of a stream, in the order the stream's user produced them. A data item
 * from writeFrame() keeps its `frame` (header room + `buf`) while it is sent whole.
 */
export type OutItem = { kind: 'data'; buf: Buffer; frame?: Buffer; release?: () => void } | { kind: 'control'; msg: object } | { kind: 'end' };
/**
 * What the mux sends next: data as the parts of one frame (`bytes` in all), or a control or end.
 * `frame`, when set, is that data already in a frame with room for the header: no copy needed.
 * `release`, when set, runs once the parts are no longer needed (copied, or `frame` written out).
 */
export type OutFrame = { kind: 'data'; parts: Buffer[]; bytes: number; frame?: Buffer; release?: () => void } | Exclude<OutItem, { kind: 'data' }>;

/** What a TunnelStream needs from its mux. */
export interface StreamPort {
  /** The stream has something to send (data with credit, control, end). */
  wake(stream: TunnelStream): void;
  /** Sends CREDIT now (bypasses the data queue). */
  grant(stream: TunnelStream, bytes: number): void;
  /** Sends RESET now and forgets the stream. */
  reset(stream: TunnelStream, body: ResetBody): void;
  /** The stream is gone (closed or destroyed): forget it. */
  released(stream: TunnelStream): void;
}

/** Control messages held for a stream nobody reads yet; a peer sending more is broken. */
const MAX_HELD_CONTROLS = 64;

/** Queued outgoing bytes above which a write waits (Writable backpressure to the stream's user). */
const OUT_HIGH_WATER = 256 * 1024;

/**
 * One multiplexed stream of a tunnel, the same class on the hub and the agent: a Duplex of binary
 * data, plus ordered control messages (`sendControl`, event 'control') and `reset(code, message)`.
 * A reset from the other end destroys the stream with an OutpostError carrying its code.
 *
 * Events: the Duplex ones ('data', 'end', 'finish', 'error', 'close') and 'control' (msg).
 */
export class TunnelStream extends Duplex {
  /** Bytes this side may still send (the peer's window). */
  private sendCredit = STREAM_WINDOW_BYTES;
  /** Bytes received and handed to the reader but not yet granted back. */
  private toGrant = 0;
  /** Bytes the peer may still send before we grant more (a peer exceeding it is broken). */
  private recvAllowance = STREAM_WINDOW_BYTES;
  private readonly inQueue: Buffer[] = [];
  private remoteEnded = false;
  private pushedEnd = false;
  private readonly outQueue: OutItem[] = [];
  private outQueuedBytes = 0;
  private heldWrite: (() => void) | undefined;
  private heldWriteBytes = 0;
  /** Bytes of data passed to _write so far (enqueued). */
  private enqueuedBytes = 0;
  /** Control messages waiting for data written before them to be enqueued. */
  private readonly deferredControls: { afterBytes: number; msg: object }[] = [];
  private wantRead = false;
  /** Control messages received before a 'control' listener was attached. */
  private readonly heldControls: ControlMessage[] = [];
  /** A RESET was sent or received: no further frame may be sent. */
  private resetDone = false;
  /** writeFrame() returned false: emit 'frameDrain' once the queue is below its high water. */
  private frameWaiting = false;

  constructor(
    readonly id: number,
    readonly open: OpenRequest,
    private readonly port: StreamPort,
  ) {
    super({ allowHalfOpen: true, highWaterMark: 256 * 1024 });
    this.once('close', () => this.port.released(this));
    this.on('newListener', (event: string) => {
      if (event !== 'control' || this.heldControls.length === 0) return;
      // 'newListener' comes before the listener is added: deliver once it is.
      process.nextTick(() => {
        for (const msg of this.heldControls.splice(0)) if (!this.destroyed) this.emit('control', msg);
      });
    });
    // A reset by the peer or a lost session is normal for a tunnel: it must never crash the
    // process through an unhandled 'error'. Listeners still get it, and `errored` keeps it.
    this.on('error', () => undefined);
  }

  /** Sends a control message after all data written before it. */
  sendControl(msg: object): void {
    if (this.resetDone || this.destroyed) return;
    // Data still in the Writable's buffer has not reached _write yet: the control waits for it.
    const pending = this.writableLength - this.heldWriteBytes;
    if (pending <= 0) this.enqueue({ kind: 'control', msg });
    else this.deferredControls.push({ afterBytes: this.enqueuedBytes + pending, msg });
  }

  /**
   * Writes data already laid out as a DATA frame: STREAM_HEADER_BYTES of room (the mux fills in
   * the header), then the payload, at most MAX_STREAM_CHUNK_BYTES. The frame then reaches the
   * socket without a copy when credit allows sending it whole. For a producer that reads into
   * such buffers (port-forward: socket reads with net's `onread`); do not mix with write() on
   * the same stream. Returns false above the high water mark: wait for 'frameDrain'. The buffer
   * must not be reused until `release` runs (once it is written out or copied).
   */
  writeFrame(frame: Buffer, release?: () => void): boolean {
    if (this.resetDone || this.destroyed || this.writableEnded) return true;
    const buf = frame.subarray(STREAM_HEADER_BYTES);
    if (buf.length === 0) return true;
    if (this.writableLength > 0 || buf.length > MAX_STREAM_CHUNK_BYTES) {
      // Data written through write() is still in the Writable's buffer: keep the order.
      if (this.write(buf)) return true;
      this.frameWaiting = true;
      this.once('drain', () => this.releaseWrite());
      return false;
    }
    this.enqueuedBytes += buf.length;
    this.enqueue({ kind: 'data', buf, frame, ...(release ? { release } : {}) });
    if (this.outQueuedBytes <= OUT_HIGH_WATER) return true;
    this.frameWaiting = true;
    return false;
  }

  /** Aborts the stream both ways, telling the peer why (code: an OutpostError code). */
  reset(code: string, message: string): void {
    if (this.resetDone || this.destroyed) return;
    this.resetDone = true;
    this.port.reset(this, { code, message: message.slice(0, 2000) });
    this.destroy();
  }

  // ---- mux side

  /**
   * Next frame item to send, respecting credit for data; undefined when blocked or empty.
   * Consecutive data chunks are taken together, up to MAX_STREAM_CHUNK_BYTES, so that the mux
   * writes one large frame (one WebSocket message, one copy) instead of one per socket read.
   */
  takeOut(): OutFrame | undefined {
    const head = this.outQueue[0];
    if (!head || this.resetDone) return undefined;
    if (head.kind !== 'data') {
      this.outQueue.shift();
      this.releaseWrite();
      return head;
    }
    const parts: Buffer[] = [];
    let room = Math.min(this.sendCredit, MAX_STREAM_CHUNK_BYTES);
    if (head.frame && head.buf.length <= room) {
      // Already a frame: sent alone, as it is.
      this.outQueue.shift();
      this.sendCredit -= head.buf.length;
      this.outQueuedBytes -= head.buf.length;
      this.releaseWrite();
      return { kind: 'data', parts: [head.buf], bytes: head.buf.length, frame: head.frame, ...(head.release ? { release: head.release } : {}) };
    }
    let bytes = 0;
    const releases: (() => void)[] = [];
    while (room > 0) {
      const item = this.outQueue[0];
      if (item?.kind !== 'data') break;
      // A whole frame waits for its own turn rather than being copied into this one.
      if (item.frame && bytes > 0 && item.buf.length <= MAX_STREAM_CHUNK_BYTES) break;
      if (item.buf.length > room) {
        parts.push(item.buf.subarray(0, room));
        item.buf = item.buf.subarray(room);
        item.frame = undefined;
        bytes += room;
        room = 0;
        break;
      }
      this.outQueue.shift();
      parts.push(item.buf);
      if (item.release) releases.push(item.release);
      bytes += item.buf.length;
      room -= item.buf.length;
    }
    if (bytes === 0) return undefined;
    this.sendCredit -= bytes;
    this.outQueuedBytes -= bytes;
    this.releaseWrite();
    return { kind: 'data', parts, bytes, ...(releases.length > 0 ? { release: () => { for (const r of releases) r(); } } : {}) };
  }

  /** Whether takeOut() would return something now. */
  get sendable(): boolean {
    const head = this.outQueue[0];
    return !this.resetDone && head !== undefined && (head.kind !== 'data' || this.sendCredit > 0);
  }

  onRemoteData(buf: Buffer): void {
    if (this.destroyed) return;
    if (buf.length > this.recvAllowance) {
      this.reset('OUTPOST_PROTOCOL', `peer sent ${buf.length} bytes with ${this.recvAllowance} bytes of credit`);
      return;
    }
    this.recvAllowance -= buf.length;
    this.inQueue.push(buf);
    this.flushRead();
  }

  onRemoteCredit(bytes: number): void {
    this.sendCredit = Math.min(this.sendCredit + bytes, 2 * STREAM_WINDOW_BYTES);
    if (this.sendable) this.port.wake(this);
  }

  onRemoteControl(msg: ControlMessage): void {
    if (this.destroyed) return;
    // Nobody listens yet (the hub relays a stream only once openStream resolved, and a short
    // command's exit control can arrive before that): held, and given to the first listener.
    if (this.listenerCount('control') === 0) {
      if (this.heldControls.length >= MAX_HELD_CONTROLS) return this.reset('OUTPOST_PROTOCOL', `more than ${MAX_HELD_CONTROLS} control messages before the stream was read`);
      this.heldControls.push(msg);
      return;
    }
    this.emit('control', msg);
  }

  onRemoteEnd(): void {
    this.remoteEnded = true;
    this.flushRead();
  }

  onRemoteReset(body: ErrorBody | ResetBody): void {
    this.resetDone = true;
    this.destroy(fromErrorBody(body as ErrorBody, 502));
  }

  /** Drops a stream nobody holds yet (its open was refused): no 'error' event. */
  discard(): void {
    this.resetDone = true;
    this.destroy();
  }

  /** The session under the stream is gone. */
  abort(err: Error): void {
    this.resetDone = true;
    this.destroy(err);
  }

  // ---- Duplex

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.resetDone) return callback(new OutpostError('CANCELLED', 'stream was reset'));
    for (let i = 0; i < chunk.length; i += MAX_STREAM_CHUNK_BYTES) this.enqueue({ kind: 'data', buf: chunk.subarray(i, i + MAX_STREAM_CHUNK_BYTES) });
    this.enqueuedBytes += chunk.length;
    this.flushDeferredControls();
    if (this.outQueuedBytes <= OUT_HIGH_WATER) return callback();
    this.heldWriteBytes = chunk.length;
    this.heldWrite = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flushDeferredControls(true);
    this.enqueue({ kind: 'end' });
    callback();
  }

  override _read(): void {
    this.wantRead = true;
    this.flushRead();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.resetDone) {
      // Destroyed locally before it finished (a consumer went away): tell the peer.
      const finished = this.writableFinished && this.remoteEnded && this.inQueue.length === 0;
      if (!finished) {
        this.resetDone = true;
        const body = err && isOutpostError(err) ? { code: err.code, message: err.message } : { code: 'OUTPOST_CANCELLED', message: err ? `stream aborted: ${err.message}` : 'stream closed by the other end' };
        this.port.reset(this, body);
      }
    }
    this.heldWrite = undefined;
    callback(err);
  }

  private enqueue(item: OutItem): void {
    if (this.resetDone) return;
    this.outQueue.push(item);
    if (item.kind === 'data') this.outQueuedBytes += item.buf.length;
    if (this.sendable) this.port.wake(this);
  }

  private flushDeferredControls(all = false): void {
    while (this.deferredControls.length > 0 && (all || (this.deferredControls[0]?.afterBytes ?? Infinity) <= this.enqueuedBytes)) {
      const d = this.deferredControls.shift();
      if (d) this.enqueue({ kind: 'control', msg: d.msg });
    }
  }

  private releaseWrite(): void {
    if (this.heldWrite && this.outQueuedBytes <= OUT_HIGH_WATER) {
      const cb = this.heldWrite;
      this.heldWrite = undefined;
      this.heldWriteBytes = 0;
      cb();
    }
    if (this.frameWaiting && this.outQueuedBytes <= OUT_HIGH_WATER && this.writableLength === 0) {
      this.frameWaiting = false;
      this.emit('frameDrain');
    }
  }

  private flushRead(): void {
    while (this.wantRead && this.inQueue.length > 0) {
      const buf = this.inQueue.shift() as Buffer;
      this.toGrant += buf.length;
      this.wantRead = this.push(buf);
    }
    // Grant in batches: one CREDIT frame per quarter window read, not per chunk.
    if (this.toGrant >= STREAM_WINDOW_BYTES / 4 && !this.resetDone && !this.destroyed) {
      this.recvAllowance += this.toGrant;
      this.port.grant(this, this.toGrant);
      this.toGrant = 0;
    }
    if (this.remoteEnded && this.inQueue.length === 0 && !this.pushedEnd) {
      this.pushedEnd = true;
      this.push(null);
    }
  }
}
