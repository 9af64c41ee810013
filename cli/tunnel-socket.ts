import WebSocket from 'ws';
import { fromErrorBody, OutpostError, type ErrorBody } from '../shared/errors.js';
import { bulkClientOptions } from '../shared/tunnel/bulk-client-options.js';
import type { StreamKind } from '../shared/protocol/streams.js';
import { API_PREFIX, type HubClient } from './client.js';
import type { Connection } from './config.js';
import { keepTunnelAlive, tunnelDeadlineMs } from './tunnel-keepalive.js';

/** The hub's tunnel endpoint (cloud-hub/tunnel/tunnel-api.ts). */
const TUNNEL_PATH = '/api/v1/tunnel';
/** Bound on the WebSocket handshake, which includes the hub opening the stream on the agent. */
const HANDSHAKE_TIMEOUT_MS = 30_000;

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
 * Opens one tunnel stream as a WebSocket: binary messages are the stream's data, text messages
 * JSON control ({type:'opened'|'end'|'error'|...}). A refusal (unknown app, disconnected node,
 * permission denied, stream limit) rejects with the hub's OutpostError. Once open, the socket
 * pings the hub and fails with "lost the hub" when it hears nothing within the read deadline.
 */
export function openTunnel(conn: Connection, kind: StreamKind, target: TunnelTarget, params: URLSearchParams): Promise<WebSocket> {
  const url = new URL(TUNNEL_PATH, conn.server.replace(/^http/, 'ws'));
  url.searchParams.set('kind', kind);
  for (const [k, v] of Object.entries(target)) if (v !== undefined) url.searchParams.set(k, String(v));
  for (const [k, v] of params) url.searchParams.append(k, v);
  const deadlineMs = tunnelDeadlineMs();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${conn.token}` }, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, maxPayload: 4 * 1024 * 1024, ...bulkClientOptions(url) });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let body: Partial<ErrorBody> | undefined;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<ErrorBody>;
        } catch {
          body = undefined;
        }
        reject(fromErrorBody({ code: body?.code ?? 'OUTPOST_INTERNAL', message: body?.message ?? `hub answered HTTP ${status}` } as ErrorBody, status));
        ws.terminate();
      });
      res.on('error', () => reject(new OutpostError('UNAVAILABLE', `hub answered HTTP ${res.statusCode ?? 0}`)));
    });
    ws.once('error', (err) => reject(new OutpostError('UNAVAILABLE', `cannot reach the hub at ${conn.server} (${conn.source}): ${err.message}`)));
    // Frames that came with the handshake are emitted on the next tick, before the caller's
    // `await` resumes and attaches its listeners: hold them until the caller had its turn.
    ws.once('open', () => {
      keepTunnelAlive(ws, deadlineMs);
      ws.pause();
      resolve(ws);
      setImmediate(() => ws.resume());
    });
  });
}
