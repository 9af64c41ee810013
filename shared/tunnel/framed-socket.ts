import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { OutpostError } from '../errors.js';
import type { ReadSlabs } from './read-slabs.js';

/**
 * The operator's leg of a tunnel stream (CLI <-> hub) as plain frames on an upgraded HTTP
 * connection (`Upgrade: outpost-stream`), instead of WebSocket: that leg carries exactly one
 * stream, so it needs no multiplexing, no masking and no message reassembly. Every frame:
 *
 *   byte 0      type (RelayFrame)
 *   bytes 1..4  payload length, uint32 big-endian
 *   bytes 5..   payload: raw bytes (DATA), UTF-8 JSON object (CONTROL), empty (PING, PONG),
 *               uint16 BE close code + UTF-8 reason (CLOSE)
 *
 * DATA is a byte stream: a receiver may deliver one frame's payload in several pieces, and does
 * (each piece a slice of the socket read it came in: no copy, no reassembly). Backpressure is the
 * TCP connection's own. CLOSE codes follow WebSocket's: 1000 clean, 1011 the stream failed.
 */
export const RelayFrame = { DATA: 1, CONTROL: 2, PING: 3, PONG: 4, CLOSE: 5 } as const;

/** The Upgrade token of this protocol. */
export const RELAY_PROTOCOL = 'outpost-stream';
export const RELAY_HEADER_BYTES = 5;
/** Largest CONTROL or CLOSE payload accepted. */
export const MAX_RELAY_CONTROL_BYTES = 64 * 1024;
/** Largest DATA frame accepted (a sender splits bigger writes). */
export const MAX_RELAY_DATA_BYTES = 16 * 1024 * 1024;
/** Unsent bytes above which sendData() returns false (then 'drain' follows). */
const HIGH_WATER = 1024 * 1024;
/** A CLOSE we sent waits this long for the peer to close the connection. */
const CLOSE_TIMEOUT_MS = 2000;
/** The code of a connection that ended without a CLOSE frame (as WebSocket's 1006). */
export const ABNORMAL_CLOSE = 1006;

/**
 * One framed connection. Events: 'data' (Buffer, a piece of the peer's byte stream), 'control'
 * (the parsed JSON value, or undefined when the payload was not JSON), 'ping', 'pong', 'drain',
 * 'error' (Error; a malformed frame is an OutpostError PROTOCOL and ends the connection), and
 * 'close' (code: the CLOSE code received or sent, ABNORMAL_CLOSE without one) exactly once.
 */
export class FramedSocket extends EventEmitter {
  private readonly header = Buffer.alloc(RELAY_HEADER_BYTES);
  private headerHave = 0;
  private frameType = 0;
  /** Payload bytes of the current frame still to come; -1 while reading a header. */
  private payloadLeft = -1;
  /** Pieces of a CONTROL or CLOSE payload. */
  private small: Buffer[] = [];
  /** The unparsed rest of a read that came while paused. */
  private held: Buffer | undefined;
  private paused = false;
  private waitingDrain = false;
  private closeCode: number | undefined;
  private closeSent = false;
  private closed = false;
  private peerEnded = false;
  private socketClosed = false;

  /** Release of the slab under `held`. */
  private releaseHeld: (() => void) | undefined;

  /**
   * `head`: bytes that came before the socket was handed over. `onread`: the socket reads into
   * `slabs` (net's onread) and its callback calls feed(); otherwise its 'data' events are read.
   * `paused`: nothing (not even `head`) is delivered before resume(): for a caller that attaches
   * its listeners later.
   */
  constructor(private readonly socket: Duplex, o: { head?: Buffer; onread?: ReadSlabs; paused?: boolean } = {}) {
    super();
    this.slabs = o.onread;
    if (!o.onread) socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('drain', () => {
      if (!this.waitingDrain) return;
      this.waitingDrain = false;
      this.emit('drain');
    });
    // A net socket reports its end (and then its close) even while paused: frames held back
    // for a paused consumer are delivered first, then the end and the close are passed on.
    socket.on('end', () => {
      this.peerEnded = true;
      this.passOnEnd();
    });
    socket.on('error', (err) => this.emit('error', err));
    socket.once('close', () => {
      this.socketClosed = true;
      this.passOnClose();
    });
    const head = o.head && o.head.length > 0 ? o.head : undefined;
    if (o.paused) {
      this.pause();
      this.held = head;
    } else if (head) {
      process.nextTick(() => this.feed(head));
    }
  }

  private readonly slabs: ReadSlabs | undefined;

  /**
   * Keeps a 'data' piece valid after the listener returned (a socket write of it, say) until the
   * returned function runs: with onread slabs, pieces are otherwise reused. A no-op without.
   */
  retain(piece: Buffer): () => void {
    return this.slabs ? this.slabs.retain(piece) : noop;
  }

  /** The connection can still send. */
  get open(): boolean {
    return !this.closed && !this.closeSent && !this.socket.destroyed && this.socket.writable;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Sends data; false when more than HIGH_WATER is unsent: wait for 'drain'. */
  sendData(chunk: Buffer): boolean {
    if (!this.open) return true;
    for (let at = 0; at < chunk.length; at += MAX_RELAY_DATA_BYTES) {
      const piece = chunk.length <= MAX_RELAY_DATA_BYTES ? chunk : chunk.subarray(at, at + MAX_RELAY_DATA_BYTES);
      this.sendFrame(RelayFrame.DATA, piece);
    }
    if (this.socket.writableLength <= HIGH_WATER) return true;
    this.waitingDrain = true;
    return false;
  }

  sendControl(msg: object): void {
    if (this.open) this.sendFrame(RelayFrame.CONTROL, Buffer.from(JSON.stringify(msg)));
  }

  ping(): void {
    if (this.open) this.sendFrame(RelayFrame.PING);
  }

  /** Sends CLOSE and ends the connection once the peer closes (or after CLOSE_TIMEOUT_MS). */
  close(code = 1000, reason = ''): void {
    if (!this.open) return;
    this.closeCode = code;
    const payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    this.sendFrame(RelayFrame.CLOSE, payload);
    this.closeSent = true;
    // Paused for a full consumer, we would never read the peer's end of the connection.
    this.resume();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS).unref();
  }

  /** Ends the connection at once, nothing more sent or delivered. */
  terminate(): void {
    this.dropHeld();
    this.socket.destroy();
  }

  /** Stops delivering 'data' and 'control' (and reading the socket) until resume(). */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    const release = this.releaseHeld;
    this.held = undefined;
    this.releaseHeld = undefined;
    if (held) this.feed(held);
    release?.();
    if (this.paused) return;
    this.socket.resume();
    this.passOnEnd();
    this.passOnClose();
  }

  private passOnEnd(): void {
    if (this.peerEnded && !this.held && !this.socket.writableEnded) this.socket.end();
  }

  private passOnClose(): void {
    if (!this.socketClosed || this.held || this.closed) return;
    this.closed = true;
    this.emit('close', this.closeCode ?? ABNORMAL_CLOSE);
  }

  private sendFrame(type: number, payload?: Buffer): void {
    const header = Buffer.allocUnsafe(RELAY_HEADER_BYTES);
    header[0] = type;
    header.writeUInt32BE(payload?.length ?? 0, 1);
    if (!payload || payload.length === 0) {
      this.socket.write(header);
      return;
    }
    // One writev for header and payload; the payload is not copied.
    this.socket.cork();
    this.socket.write(header);
    this.socket.write(payload);
    this.socket.uncork();
  }

  private dropHeld(): void {
    this.held = undefined;
    this.releaseHeld?.();
    this.releaseHeld = undefined;
  }

  /** Parses bytes read from the socket (called for each read). */
  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.paused || this.closed) {
        if (!this.closed) {
          this.held = chunk.subarray(at);
          this.releaseHeld = this.retain(this.held);
        }
        return;
      }
      if (this.payloadLeft < 0) {
        const n = Math.min(RELAY_HEADER_BYTES - this.headerHave, chunk.length - at);
        chunk.copy(this.header, this.headerHave, at, at + n);
        this.headerHave += n;
        at += n;
        if (this.headerHave === RELAY_HEADER_BYTES && !this.startFrame()) return;
        continue;
      }
      const n = Math.min(this.payloadLeft, chunk.length - at);
      const piece = chunk.subarray(at, at + n);
      at += n;
      this.payloadLeft -= n;
      if (this.frameType === RelayFrame.DATA) this.emit('data', piece);
      else this.small.push(this.slabs ? Buffer.from(piece) : piece);
      if (this.payloadLeft === 0) this.endFrame();
    }
  }

  /** A header is complete: checks it; false when it was malformed (the connection is ended). */
  private startFrame(): boolean {
    this.headerHave = 0;
    const type = this.header[0]!;
    const length = this.header.readUInt32BE(1);
    const fail = (what: string) => {
      this.emit('error', new OutpostError('PROTOCOL', `tunnel relay: ${what}`));
      this.socket.destroy();
      return false;
    };
    if (type < RelayFrame.DATA || type > RelayFrame.CLOSE) return fail(`unknown frame type ${type}`);
    if (type === RelayFrame.DATA && length > MAX_RELAY_DATA_BYTES) return fail(`DATA frame of ${length} bytes exceeds ${MAX_RELAY_DATA_BYTES}`);
    if ((type === RelayFrame.CONTROL || type === RelayFrame.CLOSE) && length > MAX_RELAY_CONTROL_BYTES) return fail(`frame of ${length} bytes exceeds ${MAX_RELAY_CONTROL_BYTES}`);
    if ((type === RelayFrame.PING || type === RelayFrame.PONG) && length !== 0) return fail('PING and PONG frames carry no payload');
    this.frameType = type;
    this.payloadLeft = length;
    if (length === 0) this.endFrame();
    return true;
  }

  private endFrame(): void {
    const type = this.frameType;
    const payload = this.small.length === 1 ? this.small[0]! : Buffer.concat(this.small);
    this.small = [];
    this.payloadLeft = -1;
    switch (type) {
      case RelayFrame.CONTROL: {
        let value: unknown;
        try {
          value = JSON.parse(payload.toString('utf8'));
        } catch {
          value = undefined;
        }
        this.emit('control', value);
        return;
      }
      case RelayFrame.PING:
        if (this.open) this.sendFrame(RelayFrame.PONG);
        this.emit('ping');
        return;
      case RelayFrame.PONG:
        this.emit('pong');
        return;
      case RelayFrame.CLOSE: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : ABNORMAL_CLOSE;
        if (!this.closeSent) {
          this.closeCode = code;
          this.close(code);
        }
        return;
      }
    }
  }
}

function noop(): void {}
