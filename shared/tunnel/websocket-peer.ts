import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';

/** Bytes queued on the WebSocket above which sendData() asks its caller to wait for 'drain'. */
const HIGH_WATER = 1024 * 1024;

/**
 * One tunnel stream over a WebSocket, with the interface of FramedSocket: binary messages are the
 * stream's bytes, text messages JSON control. The CLI's side with OUTPOST_TUNNEL_PROTOCOL=websocket
 * and the hub's side for every client that is not the CLI. Events: 'data' (Buffer), 'control' (the
 * parsed JSON, undefined when it is not JSON), 'drain', 'ping', 'pong', 'close' (code), 'error'.
 */
export class WebSocketPeer extends EventEmitter {
  private waiting = false;

  constructor(private readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        this.emit('data', data);
        return;
      }
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        msg = undefined;
      }
      this.emit('control', msg);
    });
    ws.on('ping', () => this.emit('ping'));
    ws.on('pong', () => this.emit('pong'));
    ws.on('close', (code: number) => this.emit('close', code));
    ws.on('error', (err) => this.emit('error', err));
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get isPaused(): boolean {
    return this.ws.isPaused;
  }

  /** false: more than HIGH_WATER is queued; 'drain' follows. */
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
    // A WebSocket paused for a full consumer would never read the other side's close frame.
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
