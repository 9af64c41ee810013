import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { bulkClientOptions } from '../shared/tunnel/bulk-client-options.js';
import { emitWsMessages } from '../shared/tunnel/ws-message-events.js';
import { readRefusal } from './tunnel-refusal.js';

/** Stdin or local socket bytes buffered towards the hub before sendData() asks the caller to wait. */
const HIGH_WATER = 1024 * 1024;

/**
 * A tunnel stream over WebSocket (binary messages data, text messages JSON control), with the
 * interface of FramedSocket: for a path to the hub that passes only WebSocket upgrades
 * (OUTPOST_TUNNEL_PROTOCOL=websocket). Starts paused, like the framed upgrade.
 */
export class WebSocketTunnel extends EventEmitter {
  private waiting = false;

  private constructor(private readonly ws: WebSocket) {
    super();
    emitWsMessages(ws, this);
    ws.on('ping', () => this.emit('ping'));
    ws.on('pong', () => this.emit('pong'));
    ws.on('close', (code: number) => this.emit('close', code));
    ws.on('error', (err) => this.emit('error', err));
  }

  /** Opens the WebSocket; a refusal rejects with the hub's error. */
  static open(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<WebSocketTunnel> {
    const wsUrl = new URL(url);
    wsUrl.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { headers, handshakeTimeout: timeoutMs, maxPayload: 4 * 1024 * 1024, ...bulkClientOptions(wsUrl) });
      ws.once('unexpected-response', (_req, res) => {
        void readRefusal(res).then((err) => {
          reject(err);
          ws.terminate();
        });
      });
      ws.once('error', reject);
      ws.once('open', () => {
        ws.pause();
        resolve(new WebSocketTunnel(ws));
      });
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get isPaused(): boolean {
    return this.ws.isPaused;
  }

  sendData(chunk: Buffer): boolean {
    if (!this.open) return true;
    this.ws.send(chunk, { binary: true }, () => {
      if (this.waiting && this.ws.bufferedAmount < HIGH_WATER / 4) {
        this.waiting = false;
        this.emit('drain');
      }
    });
    if (this.ws.bufferedAmount <= HIGH_WATER) return true;
    this.waiting = true;
    return false;
  }

  sendControl(msg: object): void {
    if (this.open) this.ws.send(JSON.stringify(msg));
  }

  ping(): void {
    if (this.open) this.ws.ping();
  }

  close(code = 1000, reason = ''): void {
    // A WebSocket paused for a full consumer would never read the hub's close frame.
    this.ws.resume();
    if (this.open) this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** WebSocket messages are buffers of their own: nothing to hold. */
  retain(_piece: Buffer): () => void {
    return () => undefined;
  }
}
