import { Agent, request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** API version prefix: Docker 20.10+ and Podman's compatible service (`podman system service`) both serve it. */
export const ENGINE_API = '/v1.41';

/**
 * An error from the engine. `status` is the HTTP status (404 no such container or image, 409
 * conflict, 304 already started/stopped), or 0 when the socket could not be reached at all.
 */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EngineError';
  }

  get unreachable(): boolean {
    return this.status === 0;
  }
}

export interface EngineRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Default 30 s; streams pass their own signal and no timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * HTTP/1.1 over the engine's unix socket. JSON calls share kept-alive connections; streams (logs,
 * pull progress, exec) get a connection of their own, since the engine may hijack it.
 */
export class EngineHttp {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(readonly socketPath: string) {}

  /** A JSON call; resolves with the parsed body (undefined when empty), rejects with EngineError on non-2xx. */
  async json<T>(req: EngineRequest): Promise<T> {
    const res = await this.open(req, true);
    const text = await readBody(res);
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new EngineError(`${req.method} ${req.path}: the engine answered with invalid JSON`, res.statusCode ?? 0, { cause: err });
    }
  }

  /** A streaming call: the response once its status is 2xx (the caller reads and ends it). */
  stream(req: EngineRequest): Promise<IncomingMessage> {
    return this.open(req, false);
  }

  /**
   * A call the engine answers by hijacking the connection (exec start with stdin): asks for an
   * upgrade (`Upgrade: tcp`, as the docker CLI does) and resolves with the raw socket and any bytes
   * that came with the 101 answer. Rejects with EngineError on any other answer.
   */
  upgrade(req: EngineRequest): Promise<{ socket: Socket; head: Buffer }> {
    const payload = Buffer.from(JSON.stringify(req.body ?? {}));
    return new Promise((resolve, reject) => {
      const r = request({
        socketPath: this.socketPath,
        method: req.method,
        path: ENGINE_API + req.path + queryString(req.query),
        agent: false,
        headers: { Host: 'engine', Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json', 'Content-Length': payload.length },
        signal: AbortSignal.timeout(req.timeoutMs ?? 30_000),
      });
      r.on('upgrade', (_res, socket: Socket, head: Buffer) => {
        // The timeout bounds the answer only, never the hijacked stream.
        socket.removeAllListeners('timeout');
        resolve({ socket, head });
      });
      r.on('response', (res) => {
        const status = res.statusCode ?? 0;
        readBody(res).then(
          (text) => reject(new EngineError(`${req.method} ${req.path}: ${errorMessage(text) || `HTTP ${status} instead of an upgrade`}`, status)),
          (err: unknown) => reject(new EngineError(`${req.method} ${req.path}: HTTP ${status}`, status, { cause: err })),
        );
      });
      r.on('error', (err: NodeJS.ErrnoException) => reject(new EngineError(`${req.method} ${req.path}: ${err.message}`, 0, { cause: err })));
      r.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private open(req: EngineRequest, pooled: boolean): Promise<IncomingMessage> {
    const signals = [req.signal, req.timeoutMs === 0 ? undefined : AbortSignal.timeout(req.timeoutMs ?? 30_000)].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    return new Promise((resolve, reject) => {
      const r = request(
        {
          socketPath: this.socketPath,
          method: req.method,
          path: ENGINE_API + req.path + queryString(req.query),
          agent: pooled ? this.agent : false,
          headers: { Host: 'engine', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) },
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(res);
          readBody(res).then(
            (text) => reject(new EngineError(`${req.method} ${req.path}: ${errorMessage(text) || `HTTP ${status}`}`, status)),
            (err: unknown) => reject(new EngineError(`${req.method} ${req.path}: HTTP ${status}`, status, { cause: err })),
          );
        },
      );
      r.on('error', (err: NodeJS.ErrnoException) => {
        const why = signal?.aborted ? `timed out or aborted (${String((signal.reason as Error | undefined)?.message ?? signal.reason)})` : err.message;
        reject(new EngineError(`${req.method} ${req.path}: ${why}`, 0, { cause: err }));
      });
      r.end(payload);
    });
  }
}

function queryString(query: EngineRequest['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** Reads a whole (small) response body; capped at 16 MiB. */
export function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 16 * 1024 * 1024) res.destroy(new Error('engine response larger than 16 MiB'));
      else chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

/** Docker answers `{"message": ...}`; Podman adds `cause`. */
function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON: use the text
  }
  return text.trim().slice(0, 1000);
}
