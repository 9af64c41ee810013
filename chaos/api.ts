import { setTimeout as delay } from 'node:timers/promises';
import { httpRequest } from './http.js';

export const API = '/apis/outpost.dev/v1alpha1';

/** A hub answer that was not 2xx (the hub was reachable). */
export class HubHttpError extends Error {
  constructor(readonly status: number, readonly body: string, what: string) {
    super(`${what}: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

export interface RequestOptions {
  /** Per-attempt timeout, ms. Default 4000 (a SIGSTOPped hub never answers). */
  timeoutMs?: number;
}

/**
 * The harness's HTTP client for the hub API, with the admin token. The hub is killed, paused and
 * restarted under it, so `retry` keeps trying transport failures, timeouts and 5xx until a
 * deadline; a 4xx is an answer and is returned to the caller.
 */
export class HubClient {
  constructor(private readonly url: string, private readonly token: string) {}

  /** One attempt; throws on transport failure or timeout, HubHttpError on non-2xx. */
  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const res = await httpRequest(`${this.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
      timeoutMs: options.timeoutMs ?? 4000,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = res.text;
    if (res.status < 200 || res.status >= 300) throw new HubHttpError(res.status, text, `${method} ${path}`);
    return JSON.parse(text) as T;
  }

  /**
   * Retries `request` until it succeeds, fails with a 4xx (thrown), or `deadlineMs` passes (the
   * last error is thrown). `accept` turns chosen HTTP statuses into a result (e.g. 404 on delete).
   */
  async retry<T>(method: string, path: string, body: unknown, options: { deadlineMs: number; accept?: (status: number) => T | undefined; signal?: AbortSignal }): Promise<T> {
    const deadline = Date.now() + options.deadlineMs;
    let last: unknown;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.request<T>(method, path, body);
      } catch (err) {
        if (err instanceof HubHttpError) {
          const accepted = options.accept?.(err.status);
          if (accepted !== undefined) return accepted;
          if (err.status < 500) throw err;
        }
        last = err;
      }
      if (Date.now() >= deadline || options.signal?.aborted) break;
      await delay(Math.min(1000, 100 * 2 ** Math.min(attempt, 4)));
    }
    throw new Error(`${method} ${path}: hub did not answer within ${options.deadlineMs} ms`, { cause: last });
  }

  list<T>(plural: string, deadlineMs = 15_000): Promise<{ metadata: { resourceVersion: string }; items: T[] }> {
    return this.retry('GET', `${API}/${plural}`, undefined, { deadlineMs });
  }
}
