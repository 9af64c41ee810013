import WebSocket from 'ws';
import { bulkClientOptions } from '../shared/tunnel/bulk-client-options.js';
import { WebSocketPeer } from '../shared/tunnel/websocket-peer.js';
import { readRefusal } from './tunnel-refusal.js';

/**
 * Opens a tunnel stream as a WebSocket (OUTPOST_TUNNEL_PROTOCOL=websocket: for a path to the hub
 * that passes only WebSocket upgrades); a refusal rejects with the hub's error. The stream starts
 * paused, like the framed upgrade.
 */
export function openWebSocketTunnel(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<WebSocketPeer> {
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
      resolve(new WebSocketPeer(ws));
    });
  });
}
