import type { EventEmitter } from 'node:events';

/**
 * What the CLI's commands use of a tunnel stream: a FramedSocket (`Upgrade: outpost-stream`, the
 * default) or a WebSocketPeer (OUTPOST_TUNNEL_PROTOCOL=websocket). Events: 'data' (Buffer),
 * 'control' (parsed JSON or undefined), 'drain', 'ping', 'pong', 'close' (code: 1000 clean), 'error'.
 */
export interface TunnelConnection extends EventEmitter {
  readonly open: boolean;
  readonly isPaused: boolean;
  /** false: wait for 'drain'. */
  sendData(chunk: Buffer): boolean;
  sendControl(msg: object): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  /** Keeps a 'data' piece valid past its event until the returned function runs. */
  retain(piece: Buffer): () => void;
}
