import { OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { DEFAULT_MAX_STREAMS_PER_NODE, type OpenRequest, type StreamKind } from '../../shared/protocol/streams.js';
import { StreamMux, type FrameSink } from '../../shared/tunnel/stream-mux.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';

/**
 * Handles one kind of stream. Validate the target first and throw an OutpostError to refuse
 * (NOT_FOUND, FORBIDDEN, BAD_REQUEST): the hub's openStream rejects with it. Returning accepts
 * the stream; the handler then owns it (ends or resets it when done).
 */
export type StreamHandler = (open: OpenRequest & { streamId: number }, stream: TunnelStream) => void | Promise<void>;

export interface AgentTunnelOptions {
  /** Open streams at once. Default DEFAULT_MAX_STREAMS_PER_NODE. */
  maxStreams?: number;
}

/** The agent's end of the tunnel: per-kind handlers, and one StreamMux per hub session. */
export class AgentTunnel {
  private readonly handlers = new Map<StreamKind, StreamHandler>();
  private mux: StreamMux | undefined;

  constructor(private readonly deps: { log: Logger }, private readonly options: AgentTunnelOptions = {}) {}

  handle(kind: StreamKind, handler: StreamHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Open streams of the current session. */
  get openStreams(): number {
    return this.mux?.size ?? 0;
  }

  /** A hub session started: returns the mux its binary frames go to. */
  attach(sink: FrameSink): StreamMux {
    this.mux?.closeAll(new OutpostError('UNAVAILABLE', 'the hub session was replaced'));
    this.mux = new StreamMux(sink, { role: 'agent', maxStreams: this.options.maxStreams ?? DEFAULT_MAX_STREAMS_PER_NODE }, (open, stream) => this.dispatch(open, stream));
    return this.mux;
  }

  /** The hub session ended: its streams end too (their local ends see the error). */
  detach(reason: string): void {
    this.mux?.closeAll(new OutpostError('UNAVAILABLE', `hub connection lost: ${reason}`));
    this.mux = undefined;
  }

  private async dispatch(open: OpenRequest & { streamId: number }, stream: TunnelStream): Promise<void> {
    const handler = this.handlers.get(open.kind);
    if (!handler) throw new OutpostError('BAD_REQUEST', `this agent does not serve ${open.kind} streams`);
    this.deps.log.info({ stream: open.streamId, kind: open.kind, target: open.target, user: open.user }, 'tunnel stream opened');
    stream.once('close', () => this.deps.log.debug({ stream: open.streamId, kind: open.kind }, 'tunnel stream closed'));
    await handler(open, stream);
  }
}
