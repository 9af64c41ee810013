import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { OutpostError } from '../../shared/errors.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';

/** Hop-by-hop headers (RFC 9110 7.6.1) and the operator's credential are not forwarded. */
const DROPPED = new Set(['authorization', 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/**
 * The headers passed on across the proxy: not the hop-by-hop ones, nor those the Connection header
 * names (RFC 9110 7.6.1: a client could otherwise smuggle e.g. its own X-Forwarded-For past the
 * filter), nor the client's X-Forwarded-* (the hub sets its own), nor the operator's credential.
 */
export function forwardedHeaders(incoming: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = new Set(String(incoming.connection ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean));
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(incoming)) {
    if (v === undefined || DROPPED.has(k) || named.has(k) || k.startsWith('x-forwarded-')) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Sends one HTTP request through a tunnel stream (the agent connected it to the service's port)
 * and copies the response back. `prefix` is the hub path in front of the service's own paths,
 * sent as X-Forwarded-Prefix so that a dashboard can build its links.
 */
export function proxyThroughStream(req: IncomingMessage, res: ServerResponse, stream: TunnelStream, opts: { path: string; prefix: string; port: number }): Promise<void> {
  return new Promise<void>((resolve) => {
    const headers = forwardedHeaders(req.headers);
    headers.host = `127.0.0.1:${opts.port}`;
    headers['x-forwarded-prefix'] = opts.prefix;
    if (req.socket.remoteAddress) headers['x-forwarded-for'] = req.socket.remoteAddress;
    headers.connection = 'close';
    const upstream = request({
      method: req.method ?? 'GET',
      path: opts.path,
      headers,
      // The tunnel stream is the connection: node:http needs only a Duplex. (No `agent` option:
      // node:http uses createConnection only when none is given.)
      createConnection: () => stream as unknown as Socket,
    });
    const fail = (err: Error) => {
      if (!res.headersSent) {
        const body = JSON.stringify({ code: 'OUTPOST_UNAVAILABLE', message: `the service did not answer through the tunnel: ${err.message}` });
        res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.destroy();
      }
      stream.destroy();
      resolve();
    };
    upstream.on('error', fail);
    upstream.on('response', (r) => {
      const out = forwardedHeaders(r.headers);
      res.writeHead(r.statusCode ?? 502, out);
      r.pipe(res);
      r.on('error', fail);
      res.on('close', () => { if (!stream.destroyed) stream.destroy(); resolve(); });
    });
    req.on('error', (err) => fail(new OutpostError('BAD_REQUEST', `request body failed: ${err.message}`)));
    req.pipe(upstream);
  });
}
