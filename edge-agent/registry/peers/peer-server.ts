import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../../shared/logger.js';
import { newNonce, peerProof, verifyPeerProof } from './peer-auth.js';
import { MAX_PEER_FRAME_BYTES, PEER_PROTOCOL_PATH, PeerFrameError, decodePeerMessage, type PeerFrame } from './peer-frames.js';

export interface PeerServerDeps {
  self: string;
  unit: string;
  incarnation: number;
  secrets(): readonly string[];
  log: Logger;
  /** A request from an authenticated peer; `reply` answers on the same socket. */
  onRequest(from: string, frame: PeerFrame, reply: (f: PeerFrame) => void, session: object): void;
  /** An authenticated peer connected, telling us its incarnation. */
  onPeerHello(from: string, incarnation: number, endpoint: string | undefined): void;
  onRefused(reason: string): void;
}

/** Past this many buffered bytes on an inbound socket, answers are dropped (the asker retries next round). */
const REPLY_HIGH_WATER = 8 * 1024 * 1024;

/** The listening side of peer links: challenges every connection and routes authenticated requests. */
export class PeerServer {
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PEER_FRAME_BYTES });
  private readonly sockets = new Set<WebSocket>();

  /** Connections that have not finished the handshake: bounded, as anyone who reaches the port can open them. */
  private unauthenticated = 0;

  constructor(private readonly deps: PeerServerDeps, private readonly options: { handshakeTimeoutMs?: number; maxUnauthenticated?: number } = {}) {
    this.http = createServer((_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain' }).end('peer link: WebSocket only\n');
    });
    this.http.on('upgrade', (req, socket, head) => {
      // Node removes its own error listener from an upgraded socket: a reset must not become an uncaught 'error'.
      socket.on('error', () => socket.destroy());
      // Not new URL(): it throws on targets such as `//[`, and a throw here would end the agent.
      if ((req.url ?? '/').split('?')[0] !== PEER_PROTOCOL_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket.remoteAddress ?? '?'));
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => resolve(this.http.address() as AddressInfo));
    });
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => { this.http.close(() => resolve()); this.http.closeAllConnections(); });
  }

  private accept(ws: WebSocket, remote: string): void {
    const { log } = this.deps;
    if (this.unauthenticated >= (this.options.maxUnauthenticated ?? 128)) {
      log.warn({ remote }, 'too many peer connections in their handshake; refusing one');
      this.deps.onRefused('too many connections in their handshake');
      ws.close(1013, 'try again later');
      setTimeout(() => ws.terminate(), 1000).unref();
      return;
    }
    this.unauthenticated++;
    let counted = true;
    const leaveHandshake = () => {
      if (counted) this.unauthenticated--;
      counted = false;
    };
    this.sockets.add(ws);
    const ourNonce = newNonce();
    let peer: string | undefined;
    const session = {};
    const refuse = (reason: string, code = 4400) => {
      log.warn({ peer: peer ?? `unauthenticated ${remote}`, reason }, 'refused a frame from peer; closing the connection');
      this.deps.onRefused(reason);
      ws.close(code, code === 4401 ? 'unauthorized' : 'protocol error');
      setTimeout(() => ws.terminate(), 1000).unref();
    };
    const deadline = setTimeout(() => { if (!peer) refuse('no hello within the handshake timeout', 4401); }, this.options.handshakeTimeoutMs ?? 5000);
    deadline.unref();
    const reply = (f: PeerFrame) => {
      if (ws.readyState === ws.OPEN && ws.bufferedAmount < REPLY_HIGH_WATER) ws.send(JSON.stringify(f));
    };
    ws.on('message', (data, isBinary) => {
      let frame: PeerFrame;
      try {
        frame = decodePeerMessage(data, isBinary);
      } catch (err) {
        return refuse(err instanceof PeerFrameError ? err.message : 'unreadable frame');
      }
      if (!peer) {
        if (frame.t !== 'hello') return refuse(`expected hello, got ${frame.t}`, 4401);
        if (frame.unit !== this.deps.unit) return refuse(`node ${frame.node} is of unit ${frame.unit}, not ${this.deps.unit}`, 4401);
        if (frame.node === this.deps.self) return refuse('a node cannot peer with itself', 4401);
        if (!verifyPeerProof(this.deps.secrets(), frame.proof, 'client', this.deps.unit, frame.node, this.deps.self, ourNonce, frame.nonce)) {
          return refuse(`node ${frame.node} could not prove it holds the unit credential`, 4401);
        }
        const secret = this.deps.secrets()[0] ?? '';
        peer = frame.node;
        leaveHandshake();
        clearTimeout(deadline);
        reply({ t: 'welcome', incarnation: this.deps.incarnation, proof: peerProof(secret, 'server', this.deps.unit, this.deps.self, frame.node, frame.nonce, ourNonce) });
        this.deps.onPeerHello(frame.node, frame.incarnation, frame.endpoint);
        return;
      }
      if (frame.t === 'hello' || frame.t === 'challenge' || frame.t === 'welcome') return refuse(`unexpected ${frame.t} after the handshake`);
      try {
        this.deps.onRequest(peer, frame, reply, session);
      } catch (err) {
        log.error({ err, peer, frame: frame.t }, 'handling a peer request failed');
      }
    });
    ws.on('error', (err) => log.debug({ peer, err: err.message }, 'peer socket error'));
    ws.on('close', () => {
      clearTimeout(deadline);
      leaveHandshake();
      this.sockets.delete(ws);
    });
    ws.send(JSON.stringify({ t: 'challenge', node: this.deps.self, unit: this.deps.unit, nonce: ourNonce } satisfies PeerFrame));
  }
}
