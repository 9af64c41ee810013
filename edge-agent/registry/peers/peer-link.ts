import { WebSocket } from 'ws';
import { Backoff } from '../../../shared/backoff.js';
import type { Logger } from '../../../shared/logger.js';
import { newNonce, peerProof, verifyPeerProof } from './peer-auth.js';
import { MAX_PEER_FRAME_BYTES, PEER_PROTOCOL_PATH, PeerFrameError, decodePeerMessage, type PeerFrame } from './peer-frames.js';

export interface PeerLinkDeps {
  self: string;
  unit: string;
  incarnation: number;
  peer: string;
  /** host:port the peer advertised. */
  endpoint: string;
  /** The unit credentials accepted now (current first, then the previous one during a rotation). */
  secrets(): readonly string[];
  /** Our own advertised endpoint, told to the peer in the hello. */
  advertised(): string | undefined;
  log: Logger;
  /** A frame the peer answered with (ack, digest, records). */
  onFrame(frame: PeerFrame): void;
  onUp(peerIncarnation: number): void;
  onDown(): void;
  /** A frame from the peer was refused (logged already). */
  onRefused(reason: string): void;
}

export interface PeerLinkOptions {
  /** Upper bound of the reconnect backoff, ms. Default 2000. */
  backoffMaxMs?: number;
  /** The handshake must finish within this, ms. Default 5000. */
  handshakeTimeoutMs?: number;
}

/** ws://host:port/peer/v1 for `host:port` or `[v6]:port`. */
export function peerUrl(endpoint: string): string {
  return `ws://${endpoint}${PEER_PROTOCOL_PATH}`;
}

/**
 * Our dialled connection to one peer: the handshake proves both sides hold the unit credential,
 * then we send requests on it and read the peer's answers. Reconnects with backoff until stopped.
 */
export class PeerLink {
  private ws: WebSocket | undefined;
  private isUp = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly handshakeTimeoutMs: number;

  constructor(private readonly deps: PeerLinkDeps, options: PeerLinkOptions = {}) {
    this.backoff = new Backoff({ initialMs: 200, maxMs: options.backoffMaxMs ?? 2000 });
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000;
  }

  get peer(): string {
    return this.deps.peer;
  }

  get endpoint(): string {
    return this.deps.endpoint;
  }

  get up(): boolean {
    return this.isUp;
  }

  /** Bytes queued in the socket and not yet written. */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.ws?.terminate();
  }

  /** Sends one frame; false when the link is not up. */
  send(frame: PeerFrame): boolean {
    if (!this.isUp || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    const { log } = this.deps;
    const ws = new WebSocket(peerUrl(this.deps.endpoint), { maxPayload: MAX_PEER_FRAME_BYTES, handshakeTimeout: this.handshakeTimeoutMs });
    this.ws = ws;
    const ourNonce = newNonce();
    let state: 'challenge' | 'welcome' | 'up' = 'challenge';
    let theirNonce = '';
    const deadline = setTimeout(() => {
      if (state !== 'up') {
        log.warn({ peer: this.deps.peer, endpoint: this.deps.endpoint }, 'peer handshake timed out');
        ws.terminate();
      }
    }, this.handshakeTimeoutMs);
    deadline.unref();
    const refuse = (reason: string) => {
      log.warn({ peer: this.deps.peer, endpoint: this.deps.endpoint, reason }, 'refused a frame from peer; closing the link');
      this.deps.onRefused(reason);
      ws.close(4400, 'protocol error');
      setTimeout(() => ws.terminate(), 1000).unref();
    };
    ws.on('message', (data, isBinary) => {
      let frame: PeerFrame;
      try {
        frame = decodePeerMessage(data, isBinary);
      } catch (err) {
        return refuse(err instanceof PeerFrameError ? err.message : 'unreadable frame');
      }
      if (state === 'challenge') {
        if (frame.t !== 'challenge') return refuse(`expected challenge, got ${frame.t}`);
        if (frame.node !== this.deps.peer || frame.unit !== this.deps.unit) return refuse(`endpoint ${this.deps.endpoint} is node ${frame.node} of unit ${frame.unit}, not ${this.deps.peer} of ${this.deps.unit}`);
        const secret = this.deps.secrets()[0];
        if (secret === undefined) return refuse('no unit peer credential yet');
        theirNonce = frame.nonce;
        state = 'welcome';
        const endpoint = this.deps.advertised();
        ws.send(JSON.stringify({
          t: 'hello', node: this.deps.self, unit: this.deps.unit, nonce: ourNonce, incarnation: this.deps.incarnation,
          proof: peerProof(secret, 'client', this.deps.unit, this.deps.self, this.deps.peer, theirNonce, ourNonce), ...(endpoint ? { endpoint } : {}),
        } satisfies PeerFrame));
        return;
      }
      if (state === 'welcome') {
        if (frame.t !== 'welcome') return refuse(`expected welcome, got ${frame.t}`);
        if (!verifyPeerProof(this.deps.secrets(), frame.proof, 'server', this.deps.unit, this.deps.peer, this.deps.self, ourNonce, theirNonce)) {
          return refuse('the peer could not prove it holds the unit credential');
        }
        state = 'up';
        clearTimeout(deadline);
        this.isUp = true;
        this.backoff.reset();
        log.info({ peer: this.deps.peer, endpoint: this.deps.endpoint }, 'peer link up');
        this.deps.onUp(frame.incarnation);
        return;
      }
      try {
        this.deps.onFrame(frame);
      } catch (err) {
        log.error({ err, peer: this.deps.peer, frame: frame.t }, 'handling a peer answer failed');
      }
    });
    ws.on('error', (err) => log.debug({ peer: this.deps.peer, err: err.message }, 'peer link error'));
    ws.on('close', (code) => {
      clearTimeout(deadline);
      if (this.ws !== ws) return;
      this.ws = undefined;
      const wasUp = this.isUp;
      this.isUp = false;
      if (wasUp) {
        log.info({ peer: this.deps.peer, code }, 'peer link down');
        this.deps.onDown();
      }
      if (this.stopped) return;
      this.retryTimer = setTimeout(() => this.connect(), this.backoff.next());
      this.retryTimer.unref();
    });
  }
}
