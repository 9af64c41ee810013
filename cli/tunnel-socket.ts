import { request as httpsRequest } from 'node:https';
import { OutpostError } from '../shared/errors.js';
import { FramedSocket, RELAY_PROTOCOL } from '../shared/tunnel/framed-socket.js';
import { ReadSlabs } from '../shared/tunnel/read-slabs.js';
import type { StreamKind } from '../shared/protocol/streams.js';
import { API_PREFIX, type HubClient } from './client.js';
import type { Connection } from './config.js';
import type { TunnelConnection } from './tunnel-connection.js';
import { framedRefusalError, notFramedError, readRefusal } from './tunnel-refusal.js';
import { keepTunnelAlive, tunnelDeadlineMs } from './tunnel-keepalive.js';
import { upgradeOverTcp } from './tunnel-upgrade.js';
import { openWebSocketTunnel } from './websocket-tunnel.js';

/** The hub's tunnel endpoint (cloud-hub/tunnel/tunnel-api.ts). */
const TUNNEL_PATH = '/api/v1/tunnel';
/** Bound on the upgrade, which includes the hub opening the stream on the agent. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Reads from the hub land in slabs of this size, at most one slab per read. */
const SLAB_BYTES = 1024 * 1024;
const MIN_READ_BYTES = 64 * 1024;
/** Slabs kept for reuse when the caller releases what it keeps (port-forward). */
const KEEP_FREE_SLABS = 8;

/** Where a stream goes: an app (the hub picks a running instance, optionally in a unit or on a node) or one instance. */
export type TunnelTarget = { app: string; unit?: string; node?: string } | { instance: string };

/**
 * APP|INSTANCE as the operator typed it: an instance when one has that name (and no --unit or
 * --node narrows an app), otherwise an app.
 */
export async function resolveTunnelTarget(client: HubClient, name: string, o: { unit?: string; node?: string }): Promise<TunnelTarget> {
  if (!o.unit && !o.node) {
    try {
      await client.request('GET', `${API_PREFIX}/instances/${encodeURIComponent(name)}`);
      return { instance: name };
    } catch (err) {
      if (!(err instanceof OutpostError && err.status === 404)) throw err;
    }
  }
  return { app: name, ...(o.unit ? { unit: o.unit } : {}), ...(o.node ? { node: o.node } : {}) };
}

/**
 * Opens one tunnel stream: an HTTP upgrade to `outpost-stream` (shared/tunnel/framed-socket.ts),
 * whose DATA frames are the stream's data and CONTROL frames JSON ({type:'opened'|'end'|'error'|
 * ...}). A refusal (unknown app, disconnected node, permission denied, stream limit) rejects with
 * the hub's OutpostError. `reuseReads`: the caller retains (FramedSocket.retain) every 'data'
 * piece it keeps past the event, so read buffers can be reused. Once open, the connection pings the hub and fails with "lost the hub"
 * when it hears nothing within the read deadline.
 */
export function openTunnel(conn: Connection, kind: StreamKind, target: TunnelTarget, params: URLSearchParams, o: { reuseReads?: boolean } = {}): Promise<TunnelConnection> {
  const url = new URL(TUNNEL_PATH, conn.server);
  url.searchParams.set('kind', kind);
  for (const [k, v] of Object.entries(target)) if (v !== undefined) url.searchParams.set(k, String(v));
  for (const [k, v] of params) url.searchParams.append(k, v);
  const deadlineMs = tunnelDeadlineMs();
  if (/[\r\n]/.test(conn.token)) return Promise.reject(new OutpostError('BAD_REQUEST', `the admin token (${conn.source}) contains a line break`));
  const headers = { Authorization: `Bearer ${conn.token}` };
  let upgraded: Promise<TunnelConnection>;
  try {
    upgraded = tunnelProtocol() === 'websocket'
      ? openWebSocketTunnel(url, headers, HANDSHAKE_TIMEOUT_MS)
      : url.protocol === 'http:'
        ? upgradeOverTcp(url, headers, new ReadSlabs({ slabBytes: SLAB_BYTES, minRead: MIN_READ_BYTES, keepFree: o.reuseReads ? KEEP_FREE_SLABS : 0 }), HANDSHAKE_TIMEOUT_MS)
        : upgradeOverHttps(url, headers);
  } catch (err) {
    return Promise.reject(err);
  }
  return upgraded.then(
    (tunnel) => {
      keepTunnelAlive(tunnel, deadlineMs);
      // The tunnel starts paused (frames may have come with the answer): it delivers them on a
      // later tick, after the caller's `await` resumed and attached its listeners.
      setImmediate(() => tunnel.resume());
      return tunnel;
    },
    (err: Error) => {
      throw err instanceof OutpostError ? err : new OutpostError('UNAVAILABLE', `cannot reach the hub at ${conn.server} (${conn.source}): ${err.message}`);
    },
  );
}

/**
 * OUTPOST_TUNNEL_PROTOCOL: `outpost-stream` (default: plain frames, cheapest) or `websocket` (for
 * a proxy or load balancer between CLI and hub that passes only WebSocket upgrades).
 */
export function tunnelProtocol(env: NodeJS.ProcessEnv = process.env): 'outpost-stream' | 'websocket' {
  const v = env.OUTPOST_TUNNEL_PROTOCOL;
  if (v === undefined || v === '' || v === RELAY_PROTOCOL) return RELAY_PROTOCOL;
  if (v === 'websocket') return 'websocket';
  throw new OutpostError('BAD_REQUEST', `OUTPOST_TUNNEL_PROTOCOL must be ${RELAY_PROTOCOL} or websocket, got "${v.slice(0, 40)}"`);
}

/** The upgrade through node:https (a TLS proxy in front of the hub): reads are 'data' events. */
function upgradeOverHttps(url: URL, headers: Record<string, string>): Promise<FramedSocket> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { headers: { ...headers, Connection: 'Upgrade', Upgrade: RELAY_PROTOCOL }, timeout: HANDSHAKE_TIMEOUT_MS });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${HANDSHAKE_TIMEOUT_MS / 1000}s`)));
    req.once('error', reject);
    req.once('response', (res) => void readRefusal(res, framedRefusalError).then(reject));
    req.once('upgrade', (res, socket, head) => {
      if ((res.headers.upgrade ?? '').toLowerCase() !== RELAY_PROTOCOL) {
        socket.destroy();
        reject(notFramedError(res.headers.upgrade));
        return;
      }
      socket.setNoDelay(true);
      socket.setTimeout(0);
      resolve(new FramedSocket(socket, { head, paused: true }));
    });
    req.end();
  });
}
