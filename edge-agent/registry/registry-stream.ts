import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from './records.js';

export interface StreamOptions {
  /** Only changes to this service wake the stream (all services when unset). */
  service?: string;
  /** The snapshot sent at start and after each change: the whole answer, never a delta. */
  snapshot(): Promise<unknown>;
  /** Comment lines that keep proxies from closing an idle stream, ms. Default 15 000. */
  keepAliveMs?: number;
  release(): void;
}

/**
 * A streaming watch as Server-Sent Events. Every event is a complete snapshot with the index it
 * was taken at; a snapshot equal to the previous one is not sent, so a subscriber sees only
 * increasing indexes and never a partial list. Changes that arrive while a snapshot is being
 * taken or the socket is full are folded into the next snapshot (the newest state wins).
 */
export function serveStream(registry: Registry, req: IncomingMessage, res: ServerResponse, options: StreamOptions): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Outpost-Index': String(registry.index()) });
  let closed = false;
  let busy = false;
  let again = true;
  let lastSent = '';
  let lastIndex = -1;

  const pump = async () => {
    if (busy || closed) return;
    busy = true;
    try {
      while (again && !closed) {
        again = false;
        const index = registry.index();
        const body = JSON.stringify(await options.snapshot());
        if (closed || body === lastSent || index < lastIndex) continue;
        lastSent = body;
        lastIndex = index;
        const ok = res.write(`id: ${index}\nevent: snapshot\ndata: {"index":${index},"result":${body}}\n\n`);
        if (!ok) await new Promise<void>((resolve) => { res.once('drain', resolve); res.once('close', resolve); });
      }
    } catch {
      close();
    } finally {
      busy = false;
    }
  };
  const wake = () => {
    again = true;
    void pump();
  };
  const unsubscribe = registry.onChange((changed) => {
    if (options.service === undefined || changed.some((r) => r.key.startsWith(`${options.service}/`))) wake();
  });
  const keepAlive = setInterval(() => { if (!closed) res.write(': keep-alive\n\n'); }, options.keepAliveMs ?? 15_000);
  keepAlive.unref();
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    unsubscribe();
    options.release();
    res.end();
  };
  req.on('close', close);
  res.on('close', close);
  res.on('error', close);
  wake();
}
