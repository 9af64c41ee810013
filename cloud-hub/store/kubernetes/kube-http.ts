import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type AgentOptions, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { OutpostError } from '../../../shared/errors.js';

/** An API server answer: the HTTP status and the parsed JSON body (a Kubernetes Status on errors). */
export interface KubeResponse {
  status: number;
  body: unknown;
}

/** Options of {@link KubeHttp}. */
export interface KubeHttpOptions {
  /** Bound of one non-streaming request, in ms; default 30 000. */
  requestTimeoutMs?: number;
  /** Bound of a response body, in bytes; default 64 MiB (a list page of 500 objects). */
  maxBodyBytes?: number;
}

/** A network-level failure (connection refused or reset, timeout): retryable, unlike an HTTP answer. */
export class KubeNetworkError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'KubeNetworkError';
  }
}

/**
 * A small JSON-over-HTTPS client for the API server, built from a KubeConfig (its CA, client
 * certificate, token or exec credentials). One keep-alive agent per store; every request has a
 * deadline; watch streams hand over one parsed line at a time.
 */
export class KubeHttp {
  private readonly server: URL;
  private readonly agent: HttpAgent;
  private readonly requestTimeoutMs: number;
  private readonly maxBodyBytes: number;

  private constructor(private readonly kc: KubeConfig, tls: RequestOptions, options: KubeHttpOptions) {
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new OutpostError('BAD_REQUEST', 'Kubernetes credentials name no cluster server');
    this.server = new URL(server);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024;
    this.agent = this.server.protocol === 'http:'
      ? new HttpAgent({ keepAlive: true })
      : new HttpsAgent({ keepAlive: true, ...pickTls(tls) });
  }

  static async create(kc: KubeConfig, options: KubeHttpOptions = {}): Promise<KubeHttp> {
    const tls: RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    return new KubeHttp(kc, tls, options);
  }

  /** One request; resolves with any HTTP answer, rejects with KubeNetworkError when there is none. */
  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<KubeResponse> {
    const { res, release } = await this.open(method, path, body, AbortSignal.any([AbortSignal.timeout(this.requestTimeoutMs), ...(signal ? [signal] : [])]));
    let text: string;
    try {
      text = await this.readBody(res);
    } finally {
      release();
    }
    let parsed: unknown = text;
    if (text && /json/.test(String(res.headers['content-type']))) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new KubeNetworkError(`${method} ${path}: the API server sent invalid JSON`);
      }
    }
    return { status: res.statusCode ?? 0, body: parsed };
  }

  /**
   * A watch stream: resolves once the server answered (200: lines follow through `onLine` until the
   * stream ends, then `onEnd`; other statuses are returned with their body and no stream).
   * Aborting `signal` ends the stream (onEnd is then not called).
   */
  async stream(path: string, signal: AbortSignal, onLine: (line: unknown) => void, onEnd: (err?: Error) => void): Promise<KubeResponse | undefined> {
    const connectDeadline = AbortSignal.any([signal, AbortSignal.timeout(this.requestTimeoutMs)]);
    const { res, release } = await this.open('GET', path, undefined, connectDeadline);
    // The deadline bounds getting an answer, not the stream: from here on only `signal` ends it.
    release();
    if (res.statusCode !== 200) {
      const text = await this.readBody(res);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch { /* keep the text */ }
      return { status: res.statusCode ?? 0, body };
    }
    let buffered = '';
    let ended = false;
    const end = (err?: Error) => {
      if (ended) return;
      ended = true;
      res.destroy();
      if (!signal.aborted) onEnd(err);
    };
    signal.addEventListener('abort', () => end(), { once: true });
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > this.maxBodyBytes) return end(new KubeNetworkError(`watch ${path}: one event exceeds ${this.maxBodyBytes} bytes`));
      for (let nl = buffered.indexOf('\n'); nl >= 0 && !ended; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.trim()) continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          return end(new KubeNetworkError(`watch ${path}: the API server sent a line that is not JSON`));
        }
        onLine(parsed);
      }
    });
    res.on('end', () => end());
    res.on('error', (err) => end(new KubeNetworkError(`watch ${path}: ${err.message}`, { cause: err })));
    res.on('close', () => end());
    return undefined;
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * Sends a request; `signal` (deadline or cancellation) destroys it until release() is called,
   * after which the response is the caller's to end.
   */
  private async open(method: string, path: string, body: unknown, signal: AbortSignal): Promise<{ res: IncomingMessage; release: () => void }> {
    const auth: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(auth); // per request: tokens from files and exec plugins rotate
    const headers: OutgoingHttpHeaders = { ...(auth.headers as OutgoingHttpHeaders | undefined), accept: 'application/json' };
    if (auth.auth) headers.authorization = `Basic ${Buffer.from(auth.auth).toString('base64')}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      // Node sends a DELETE body neither chunked nor sized unless told: the bytes would then be read
      // as the next request on the keep-alive connection.
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const url = new URL(path, this.server);
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    if (signal.aborted) throw new KubeNetworkError(`${method} ${url.pathname}: aborted before it was sent`);
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.agent });
      const onAbort = () => req.destroy(new KubeNetworkError(`${method} ${url.pathname}: ${String((signal.reason as Error | undefined)?.message ?? 'aborted')}`));
      const release = () => signal.removeEventListener('abort', onAbort);
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('response', (res) => resolve({ res, release }));
      req.on('error', (err) => {
        release();
        reject(err instanceof KubeNetworkError ? err : new KubeNetworkError(`${method} ${url.pathname}: ${err.message}`, { cause: err }));
      });
      req.end(payload);
    });
  }

  private readBody(res: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.length > this.maxBodyBytes) res.destroy(new KubeNetworkError(`response exceeds ${this.maxBodyBytes} bytes`));
      });
      res.on('end', () => resolve(text));
      res.on('error', (err) => reject(err instanceof KubeNetworkError ? err : new KubeNetworkError(err.message, { cause: err })));
      res.on('close', () => {
        if (!res.complete) reject(new KubeNetworkError('the connection closed before the answer was complete'));
      });
    });
  }
}

function pickTls(o: RequestOptions): AgentOptions {
  const tls: AgentOptions = {};
  if (o.ca !== undefined) tls.ca = o.ca;
  if (o.cert !== undefined) tls.cert = o.cert;
  if (o.key !== undefined) tls.key = o.key;
  if (o.pfx !== undefined) tls.pfx = o.pfx;
  if (o.passphrase !== undefined) tls.passphrase = o.passphrase;
  if (o.rejectUnauthorized !== undefined) tls.rejectUnauthorized = o.rejectUnauthorized;
  if (o.servername !== undefined) tls.servername = o.servername;
  return tls;
}
