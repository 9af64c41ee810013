import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyObject, KindInfo } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import { matchesRequirements } from '../../shared/labels.js';
import type { Store, WatchEvent } from '../store/store.js';
import { listOptions } from './resources.js';

/** Bytes a watch may have waiting for its client before the hub ends it. */
const MAX_WATCH_BUFFER = 16 * 1024 * 1024;

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
export async function streamWatch(store: Store, req: IncomingMessage, res: ServerResponse, info: KindInfo, query: URLSearchParams, present: (o: AnyObject) => AnyObject = (o) => o): Promise<void> {
  const opts = listOptions(query);
  const rvParam = query.get('resourceVersion');
  if (rvParam !== null && !/^\d+$/.test(rvParam)) throw new OutpostError('BAD_REQUEST', `resourceVersion "${rvParam}" is not a number`);
  const controller = new AbortController();
  const matches = (o: unknown) => matchesRequirements((o as { metadata?: { labels?: Record<string, string> } }).metadata?.labels, opts.labelSelector ?? []) && matchesFields(o, opts.fieldSelector);
  // With a selector, an object that stops matching is DELETED for this watcher and one that
  // starts matching is ADDED, as Kubernetes does; otherwise clients keep stale objects.
  // `matched` holds the names this watcher currently shows, for the objects it has seen at all;
  // an object first seen in a resumed watch keeps the store's event type.
  const matched = new Set<string>();
  const seen = new Set<string>();
  const write = (e: WatchEvent) => {
    const name = e.object.metadata.name;
    const now = e.type !== 'DELETED' && matches(e.object);
    // Unseen: after a list, it was not shown; when resuming, assume the client has it if it matches.
    const was = seen.has(name) ? matched.has(name) : rvParam !== null && e.type !== 'ADDED' && matches(e.object);
    seen.add(name);
    let type: string | undefined;
    if (now) type = was ? 'MODIFIED' : 'ADDED';
    else if (was) type = 'DELETED';
    if (now) matched.add(name);
    else matched.delete(name);
    if (e.type === 'DELETED') seen.delete(name);
    if (!type) return;
    if (res.writableLength > MAX_WATCH_BUFFER) {
      // A client that does not read must not grow the hub's memory: end its watch; it re-lists.
      end();
      res.destroy();
      return;
    }
    res.write(`${JSON.stringify({ type, object: present(e.object) })}\n`);
  };
  let from: number;
  const initial: WatchEvent[] = [];
  if (rvParam === null) {
    const list = await store.list(info.kind, opts);
    from = list.revision;
    for (const o of list.items) initial.push({ type: 'ADDED', object: o, revision: Number(o.metadata.resourceVersion) });
  } else {
    from = Number(rvParam);
    const current = await store.currentRevision();
    if (from > current) {
      throw new OutpostError('BAD_REQUEST', `resourceVersion ${from} is newer than the hub's current revision ${current} (was the hub restored from a backup?); list again and watch from the list's resourceVersion`);
    }
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
  const heartbeat = setInterval(() => res.write('\n'), 15_000);
  for (const e of [...initial, ...buffered]) write(e);
  function end(): void {
    clearInterval(heartbeat);
    watcher.stop();
    controller.abort();
  }
  req.on('close', end);
  res.on('close', end);
}
