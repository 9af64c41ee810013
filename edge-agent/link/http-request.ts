import { request as httpRequestFn, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequestFn } from 'node:https';

/**
 * One HTTP(S) request of the agent to the hub (join, registry digest and lookups), on node:http.
 * Not the global fetch: its first call loads undici and compiles its llhttp WebAssembly parser,
 * about 10 MiB of resident memory that an agent keeps for its lifetime (issue 7, agent footprint).
 */
export interface HttpAnswer {
  status: number;
  ok: boolean;
  headers: IncomingHttpHeaders;
  text: string;
}

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** An answer body larger than this fails the request. Default 64 MiB. */
  maxBytes?: number;
}

/** Resolves with any status; rejects when the hub cannot be reached, the signal aborts or the body is too large. */
export function httpRequest(url: string, init: HttpRequestInit = {}): Promise<HttpAnswer> {
  const maxBytes = init.maxBytes ?? 64 * 1024 * 1024;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequestFn : httpRequestFn;
    const headers: Record<string, string> = { ...init.headers };
    if (init.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(init.body));
    const req = send(target, { method: init.method ?? 'GET', headers, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy(new Error(`answer larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.once('error', reject);
      res.once('close', () => { if (!res.complete) reject(new Error('the answer was cut off')); });
      res.once('end', () => {
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.once('error', reject);
    req.end(init.body);
  });
}
