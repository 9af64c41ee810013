import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { OutpostError } from '../../shared/errors.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';

/** Hop-by-hop headers (RFC 9110 7.6.1) and the operator's credential are not forwarded. */
const DROPPED = new Set(['authorization', 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/**
 * Sends one HTTP request through a tunnel stream (the agent connected it to the service's port)
 * and copies the response back. `prefix` is the hub path in front of the service's own paths,
 * sent as X-Forwarded-Prefix so that a dashboard can build its links.
 */
export function proxyThroughStream(req: IncomingMessage, res: ServerResponse, stream: TunnelStream, opts: { path: string; prefix: string; port: number }): Promise<void> {
  return new Promise<void>((resolve) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROPPED.has(k)) headers[k] = v;
    headers.host = `127.0.0.1:${opts.port}`;
    headers['x-forwarded-prefix'] = opts.prefix;
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
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && !DROPPED.has(k)) out[k] = v;
      res.writeHead(r.statusCode ?? 502, out);
      r.pipe(res);
      r.on('error', fail);
      res.on('close', () => { if (!stream.destroyed) stream.destroy(); resolve(); });
    });
    req.on('error', (err) => fail(new OutpostError('BAD_REQUEST', `request body failed: ${err.message}`)));
    req.pipe(upstream);
  });
}
