import { fromErrorBody, isOutpostError, OutpostError, type ErrorBody } from '../errors.js';
import {
  SOCKET_HIGH_WATER_BYTES, StreamFrameType, decodeJsonPayload, decodeStreamFrame, encodeCredit, encodeDataFrame, encodeJsonFrame, encodeStreamFrame, parseOpenRequest, writeDataHeader,
  type ControlMessage, type OpenRequest, type ResetBody,
} from '../protocol/streams.js';
import { TunnelStream, type StreamPort } from './tunnel-stream.js';

/** Where the mux writes binary messages: the session's WebSocket. */
export interface FrameSink {
  /** Sends one binary message; `done` runs once it is written out or failed. */
  send(frame: Buffer, done: () => void): void;
}

/** The agent's answer to an OPEN: resolve to accept, throw (an OutpostError) to refuse. */
export type OpenHandler = (open: OpenRequest & { streamId: number }, stream: TunnelStream) => void | Promise<void>;

export interface StreamMuxOptions {
  /** 'hub' opens streams; 'agent' accepts them through `onOpen`. */
  role: 'hub' | 'agent';
  /** Open streams allowed at once; more are refused with OUTPOST_STREAM_LIMIT. */
  maxStreams: number;
  /** How long the hub waits for ACCEPT or RESET, ms. Default 15 000. */
  openTimeoutMs?: number;
}

interface Pending {
  resolve(stream: TunnelStream): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Multiplexes TunnelStreams over one session (shared/protocol/streams.ts). Stream data waits in
 * per-stream queues and is written round-robin, one chunk per stream per turn, only while less
 * than SOCKET_HIGH_WATER_BYTES of it is unsent: whatever else the session writes directly to the
 * socket (JSON frames, pings) passes all queued stream data.
 */
export class StreamMux implements StreamPort {
  private readonly streams = new Map<number, TunnelStream>();
  private readonly ready = new Set<TunnelStream>();
  private readonly pending = new Map<number, Pending>();
  /** Agent side: streams whose ACCEPT went out. */
  private readonly accepted = new Set<number>();
  private nextId = 1;
  private inflight = 0;
  private pumping = false;
  private closedWith: Error | undefined;

  constructor(
    private readonly sink: FrameSink,
    private readonly options: StreamMuxOptions,
    private readonly onOpen?: OpenHandler,
  ) {}

  /** Open streams. */
  get size(): number {
    return this.streams.size;
  }

  /** Hub: opens a stream; resolves once the agent accepted it, rejects with its refusal. */
  open(req: OpenRequest): Promise<TunnelStream> {
    if (this.options.role !== 'hub') return Promise.reject(new OutpostError('INTERNAL', 'only the hub opens streams'));
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.streams.size >= this.options.maxStreams) {
      return Promise.reject(new OutpostError('STREAM_LIMIT', `the node has ${this.streams.size} open streams, the limit is ${this.options.maxStreams}; close some (logs -f, port-forward, exec) and retry`));
    }
    let id = this.nextId;
    while (this.streams.has(id)) id = (id % 0xffff_fffe) + 1;
    this.nextId = (id % 0xffff_fffe) + 1;
    const stream = new TunnelStream(id, req, this);
    this.streams.set(id, stream);
    return new Promise<TunnelStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        stream.reset('OUTPOST_UNAVAILABLE', 'the agent did not answer the stream open in time');
        reject(new OutpostError('UNAVAILABLE', `the agent did not answer within ${this.options.openTimeoutMs ?? 15_000} ms`));
      }, this.options.openTimeoutMs ?? 15_000);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.sink.send(encodeJsonFrame(StreamFrameType.OPEN, id, req), () => undefined);
    });
  }

  /** Handles one binary message from the peer. Throws PROTOCOL when the frame itself is malformed. */
  receive(data: Buffer): void {
    const frame = decodeStreamFrame(data);
    const id = frame.streamId;
    const stream = this.streams.get(id);
    switch (frame.type) {
      case StreamFrameType.OPEN:
        return this.onRemoteOpen(id, frame.payload);
      case StreamFrameType.ACCEPT: {
        const p = this.pending.get(id);
        if (!p || !stream) return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(stream);
        return;
      }
      case StreamFrameType.DATA:
        stream?.onRemoteData(frame.payload);
        return;
      case StreamFrameType.CREDIT:
        stream?.onRemoteCredit(frame.payload.readUInt32BE(0));
        return;
      case StreamFrameType.CONTROL: {
        if (!stream) return;
        // A bad control message is that stream's problem (an operator's oversized resize, say):
        // it resets the stream, never the session with every other stream and the sync on it.
        let msg: Record<string, unknown>;
        try {
          msg = decodeJsonPayload(frame.payload, 'CONTROL');
          if (typeof msg.type !== 'string') throw new OutpostError('PROTOCOL', 'CONTROL payload needs a string "type"');
        } catch (err) {
          stream.reset('OUTPOST_PROTOCOL', (err as Error).message);
          return;
        }
        stream.onRemoteControl(msg as ControlMessage);
        return;
      }
      case StreamFrameType.END:
        stream?.onRemoteEnd();
        return;
      case StreamFrameType.RESET: {
        if (!stream) return;
        const body = decodeJsonPayload(frame.payload, 'RESET');
        const reset: ResetBody = { code: typeof body.code === 'string' ? body.code.slice(0, 64) : 'OUTPOST_INTERNAL', message: typeof body.message === 'string' ? body.message.slice(0, 2000) : 'stream reset' };
        const p = this.pending.get(id);
        if (p) {
          this.pending.delete(id);
          clearTimeout(p.timer);
          p.reject(fromErrorBody(reset as ErrorBody, 502));
          stream.discard();
          return;
        }
        stream.onRemoteReset(reset);
        return;
      }
    }
  }

  /** The session is gone: every stream ends with `err`; later opens fail with it. */
  closeAll(err: Error): void {
    this.closedWith = err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
      this.streams.get(id)?.discard();
    }
    for (const s of [...this.streams.values()]) s.abort(err);
    this.streams.clear();
    this.ready.clear();
  }

  // ---- StreamPort

  wake(stream: TunnelStream): void {
    this.ready.add(stream);
    this.pump();
  }

  grant(stream: TunnelStream, bytes: number): void {
    if (this.streams.get(stream.id) === stream) this.sink.send(encodeCredit(stream.id, bytes), () => undefined);
  }

  reset(stream: TunnelStream, body: ResetBody): void {
    if (this.streams.get(stream.id) !== stream || this.closedWith) return;
    this.sink.send(encodeJsonFrame(StreamFrameType.RESET, stream.id, body), () => undefined);
    const p = this.pending.get(stream.id);
    if (p) {
      this.pending.delete(stream.id);
      clearTimeout(p.timer);
      p.reject(fromErrorBody(body as ErrorBody, 502));
    }
    this.forget(stream);
  }

  released(stream: TunnelStream): void {
    if (this.streams.get(stream.id) === stream) this.forget(stream);
  }

  // ---- internals

  private forget(stream: TunnelStream): void {
    this.streams.delete(stream.id);
    this.ready.delete(stream);
    this.accepted.delete(stream.id);
  }

  private onRemoteOpen(id: number, payload: Buffer): void {
    if (this.options.role !== 'agent' || !this.onOpen) throw new OutpostError('PROTOCOL', 'only the hub opens streams');
    if (this.streams.has(id)) throw new OutpostError('PROTOCOL', `stream ${id} is already open`);
    const refuse = (err: unknown) => {
      const body = isOutpostError(err) ? { code: err.code, message: err.message } : { code: 'OUTPOST_INTERNAL', message: 'the agent could not open the stream' };
      this.sink.send(encodeJsonFrame(StreamFrameType.RESET, id, body), () => undefined);
    };
    let req: OpenRequest;
    try {
      req = parseOpenRequest(decodeJsonPayload(payload, 'OPEN'));
    } catch (err) {
      return refuse(isOutpostError(err) ? new OutpostError('BAD_REQUEST', err.message) : err);
    }
    if (this.streams.size >= this.options.maxStreams) {
      return refuse(new OutpostError('STREAM_LIMIT', `the agent has ${this.streams.size} open streams, its limit is ${this.options.maxStreams}`));
    }
    const stream = new TunnelStream(id, req, this);
    this.streams.set(id, stream);
    const handler = this.onOpen;
    void (async () => {
      try {
        await handler({ ...req, streamId: id }, stream);
        this.accept(stream);
      } catch (err) {
        if (stream.destroyed) return;
        const e = isOutpostError(err) ? err : new OutpostError('INTERNAL', `the agent could not open the stream: ${(err as Error).message}`);
        stream.reset(e.code, e.message);
      }
    })();
  }

  private accept(stream: TunnelStream): void {
    if (this.options.role !== 'agent' || this.accepted.has(stream.id) || this.streams.get(stream.id) !== stream) return;
    this.accepted.add(stream.id);
    this.sink.send(encodeStreamFrame(StreamFrameType.ACCEPT, stream.id), () => undefined);
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.inflight < SOCKET_HIGH_WATER_BYTES && this.ready.size > 0) {
        const stream = this.ready.values().next().value as TunnelStream;
        this.ready.delete(stream);
        if (this.streams.get(stream.id) !== stream) continue;
        // The handler may write before it returns: ACCEPT goes first.
        this.accept(stream);
        const item = stream.takeOut();
        if (!item) continue;
        let frame: Buffer;
        // Runs once the frame is written out: the data under a frame sent as it is.
        let written: (() => void) | undefined;
        if (item.kind === 'data' && item.frame) {
          frame = writeDataHeader(item.frame, stream.id);
          written = item.release;
        } else if (item.kind === 'data') {
          frame = encodeDataFrame(stream.id, item.parts, item.bytes);
          item.release?.(); // copied into the frame
        } else if (item.kind === 'control') frame = encodeJsonFrame(StreamFrameType.CONTROL, stream.id, item.msg);
        else frame = encodeStreamFrame(StreamFrameType.END, stream.id);
        this.inflight += frame.length;
        this.sink.send(frame, () => {
          this.inflight -= frame.length;
          written?.();
          if (this.ready.size > 0) this.pump();
        });
        // Round robin: a stream with more to send goes to the back.
        if (stream.sendable) this.ready.add(stream);
      }
    } finally {
      this.pumping = false;
    }
  }
}
