// Small clients of an agent's registry for tests: HTTP calls, an SSE reader, and `dig`.
import { spawn } from 'node:child_process';

export interface RegistryAnswer<T = unknown> {
  status: number;
  index: number;
  header: number;
  body: T & { index?: number; code?: string; message?: string; fields?: Array<{ path: string; message: string }> };
}

export async function registryCall<T = Record<string, unknown>>(localApi: string, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<RegistryAnswer<T>> {
  const res = await fetch(`${localApi}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: signal ?? AbortSignal.timeout(60_000),
  });
  const parsed = (await res.json()) as RegistryAnswer<T>['body'];
  return { status: res.status, index: parsed.index ?? -1, header: Number(res.headers.get('x-outpost-index')), body: parsed };
}

export interface SseEvent {
  index: number;
  result: unknown;
}

/** Reads a registry SSE watch into `events` until close() is called. */
export function openWatch(url: string): { events: SseEvent[]; close(): void; done: Promise<void> } {
  const events: SseEvent[] = [];
  const abort = new AbortController();
  const done = (async () => {
    try {
      const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data) events.push(JSON.parse(data.slice(6)) as SseEvent);
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  })();
  return { events, close: () => abort.abort(), done };
}

export interface DigResult {
  status: string;
  answers: string[][];
  additionals: string[][];
}

/** `dig @host -p port name type` (apt bind9-dnsutils), parsed: the status and the answer/additional records as fields. */
export function dig(server: string, name: string, type: string, extra: string[] = []): Promise<DigResult> {
  const [host, port] = [server.slice(0, server.lastIndexOf(':')), server.slice(server.lastIndexOf(':') + 1)];
  return new Promise((resolve, reject) => {
    const child = spawn('dig', [`@${host}`, '-p', port, name, type, '+tries=1', '+time=5', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('exit', () => {
      const status = /status: ([A-Z]+)/.exec(out)?.[1];
      if (!status) return reject(new Error(`dig gave no status:\n${out}`));
      const section = (title: string) => {
        const start = out.indexOf(`;; ${title} SECTION:`);
        if (start < 0) return [];
        const rest = out.slice(start).split('\n').slice(1);
        const end = rest.findIndex((l) => l.trim() === '');
        return rest.slice(0, end < 0 ? undefined : end).map((l) => l.trim().split(/\s+/));
      };
      resolve({ status, answers: section('ANSWER'), additionals: section('ADDITIONAL') });
    });
  });
}
