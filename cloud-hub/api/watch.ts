import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindInfo } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import { matchesRequirements } from '../../shared/labels.js';
import type { Store, WatchEvent } from '../store/store.js';
import { listOptions } from './resources.js';

function matchesFields(obj: unknown, fields: Record<string, string> | undefined): boolean {
  if (!fields) return true;
  return Object.entries(fields).every(([path, want]) => {
    let v: unknown = obj;
    for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
    return String(v ?? '') === want;
  });
}

/**
 * Streams watch events as JSON lines (`{"type":"ADDED","object":{...}}`), Kubernetes-style.
 * With `resourceVersion=R`: every change after R (410 when R is older than the kept history).
 * Without: the current objects as ADDED, then changes.
 */
export async function streamWatch(store: Store, req: IncomingMessage, res: ServerResponse, info: KindInfo, query: URLSearchParams): Promise<void> {
  const opts = listOptions(query);
  const rvParam = query.get('resourceVersion');
  if (rvParam !== null && !/^\d+$/.test(rvParam)) throw new OutpostError('BAD_REQUEST', `resourceVersion "${rvParam}" is not a number`);
  const controller = new AbortController();
  const write = (e: { type: string; object: unknown }) => {
    if (!matchesRequirements((e.object as { metadata?: { labels?: Record<string, string> } }).metadata?.labels, opts.labelSelector ?? [])) return;
    if (!matchesFields(e.object, opts.fieldSelector)) return;
    res.write(`${JSON.stringify(e)}\n`);
  };
  let from: number;
  const initial: WatchEvent[] = [];
  if (rvParam === null) {
    const list = await store.list(info.kind, opts);
    from = list.revision;
    for (const o of list.items) initial.push({ type: 'ADDED', object: o, revision: Number(o.metadata.resourceVersion) });
  } else {
    from = Number(rvParam);
  }
  // Subscribing first makes a too-old revision fail as an HTTP 410 before any byte is sent.
  const buffered: WatchEvent[] = [];
  let headerSent = false;
  const watcher = await store.watch({ kinds: [info.kind], fromRevision: from, signal: controller.signal }, (e) => {
    if (headerSent) write(e);
    else buffered.push(e);
  });
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  headerSent = true;
  for (const e of [...initial, ...buffered]) write(e);
  const heartbeat = setInterval(() => res.write('\n'), 15_000);
  const end = () => {
    clearInterval(heartbeat);
    watcher.stop();
    controller.abort();
  };
  req.on('close', end);
  res.on('close', end);
}
