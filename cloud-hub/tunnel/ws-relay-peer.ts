import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { emitWsMessages } from '../../shared/tunnel/ws-message-events.js';
import type { RelayPeer } from './relay.js';

/** CLI-bound bytes buffered per WebSocket before sendData() asks the stream to wait. */
const HIGH_WATER = 1024 * 1024;

/**
 * A WebSocket as a RelayPeer: binary messages are data, text messages JSON control. For clients
 * other than the CLI (scripts, browsers); the CLI speaks the cheaper `outpost-stream` framing.
 */
export function wsRelayPeer(ws: WebSocket): RelayPeer {
  const peer = new EventEmitter() as RelayPeer;
  let unsent = 0;
  let waiting = false;
  Object.defineProperty(peer, 'open', { get: () => ws.readyState === ws.OPEN });
  peer.sendData = (chunk) => {
    unsent += chunk.length;
    ws.send(chunk, { binary: true }, () => {
      unsent -= chunk.length;
      if (waiting && unsent < HIGH_WATER / 4) {
        waiting = false;
        peer.emit('drain');
      }
    });
    if (unsent <= HIGH_WATER) return true;
    waiting = true;
    return false;
  };
  peer.sendControl = (msg) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  peer.close = (code, reason) => {
    if (ws.readyState === ws.OPEN) ws.close(code, reason);
  };
  peer.terminate = () => ws.terminate();
  peer.pause = () => ws.pause();
  peer.resume = () => ws.resume();
  emitWsMessages(ws, peer);
  ws.on('close', () => peer.emit('close'));
  ws.on('error', (err) => peer.emit('error', err));
  return peer;
}
