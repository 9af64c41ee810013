import { fromErrorBody, OutpostError, type ErrorBody } from '../shared/errors.js';
import type { Connection } from './config.js';

export const API_PREFIX = '/apis/outpost.dev/v1alpha1';

/** A small client of the hub's HTTP API; errors come back as OutpostError with the hub's code. */
export class HubClient {
  constructor(private readonly conn: Connection) {}

  get server(): string {
    return this.conn.server;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new OutpostError('PROTOCOL', `hub answered ${res.status} with a body that is not JSON`);
    }
    if (!res.ok) {
      const err = parsed as Partial<ErrorBody> | undefined;
      throw fromErrorBody({ code: err?.code ?? 'OUTPOST_INTERNAL', message: err?.message ?? `HTTP ${res.status}`, ...(err?.fields ? { fields: err.fields } : {}) } as ErrorBody, res.status);
    }
    return parsed as T;
  }

  async raw(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const url = `${this.conn.server.replace(/\/$/, '')}${path}`;
    try {
      return await fetch(url, {
        method,
        headers: { Authorization: `Bearer ${this.conn.token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (cause) {
      throw new OutpostError('UNAVAILABLE', `cannot reach the hub at ${this.conn.server} (${this.conn.source}): ${(cause as Error).cause instanceof Error ? ((cause as Error).cause as Error).message : (cause as Error).message}`);
    }
  }
}
