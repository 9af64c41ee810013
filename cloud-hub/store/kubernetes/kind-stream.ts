import type { AnyObject, KindName } from '../../../shared/api/index.js';
import { Backoff } from '../../../shared/backoff.js';
import { sleep } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import type { WatchEvent, WatchEventType } from '../store.js';
import { deepFreeze } from '../watchers.js';
import { kubeStatus } from './kube-errors.js';
import type { KubeHttp } from './kube-http.js';
import { listAll } from './list-all.js';
import { fromCustomResource, resourcePath, revisionOf } from './object-mapping.js';

/** Reconnect and resync tuning of a {@link KindStream}. */
export interface KindStreamTuning {
  /** Backoff ceilings between failed watch or list requests, in ms; defaults 200 and 5000. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** A connection that sends nothing (not even a bookmark) for this long is replaced, in ms; default 150 000. */
  idleMs?: number;
}

/** Options of {@link KindStream}. */
export interface KindStreamOptions extends KindStreamTuning {
  http: KubeHttp;
  kind: KindName;
  log?: Logger | undefined;
  /** The subscriber's view of this kind at `startRevision` (name -> object); kept up to date by the stream. */
  known: Map<string, AnyObject>;
  /** Watch from here (exclusive). */
  startRevision: number;
  /** Events at or below this revision update `known` but are not delivered (a watch from a future revision). */
  deliverAfter: number;
  onEvent: (event: WatchEvent) => void;
  /** Everything up to this revision has been seen (events, bookmarks, a resync's list). */
  onProgress: (revision: number) => void;
  /** The first watch request was answered. */
  onConnected: () => void;
}

/**
 * One kind's watch, kept alive the informer way: reconnect from the last revision seen when the
 * connection ends; when the API server answers 410 Gone (history compacted, or older than its
 * watch cache), list again and deliver the difference from what the subscriber already holds
 * (ADDED, MODIFIED, and DELETED at the list's revision), then watch on from the list. So a
 * subscriber never misses an object, though the individual events of a gap are folded into one.
 * Runs until `signal` aborts.
 */
export class KindStream {
  private lastRevision: number;
  private connected = false;

  constructor(private readonly o: KindStreamOptions) {
    this.lastRevision = o.startRevision;
  }

  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: this.o.retryInitialMs ?? 200, maxMs: this.o.retryMaxMs ?? 5000 });
    while (!signal.aborted) {
      let outcome: 'ended' | 'gone' | 'failed';
      try {
        outcome = await this.connectOnce(signal);
      } catch (err) {
        if (signal.aborted) return;
        this.o.log?.warn({ err, kind: this.o.kind }, 'store watch: connection failed; retrying');
        outcome = 'failed';
      }
      if (signal.aborted) return;
      if (outcome === 'gone') {
        try {
          await this.resync(signal);
          backoff.reset();
          continue;
        } catch (err) {
          if (signal.aborted) return;
          this.o.log?.warn({ err, kind: this.o.kind }, 'store watch: list after 410 failed; retrying');
          outcome = 'failed';
        }
      }
      if (outcome === 'ended') {
        backoff.reset();
        continue;
      }
      await sleep(backoff.next(), signal).catch(() => undefined);
    }
  }

  /** One watch connection, from the last revision seen to its end. */
  private async connectOnce(signal: AbortSignal): Promise<'ended' | 'gone' | 'failed'> {
    const connection = new AbortController();
    const stop = () => connection.abort();
    signal.addEventListener('abort', stop, { once: true });
    try {
      let settle!: (outcome: 'ended' | 'gone' | 'failed') => void;
      const done = new Promise<'ended' | 'gone' | 'failed'>((resolve) => { settle = resolve; });
      let idle: NodeJS.Timeout | undefined;
      const idleMs = this.o.idleMs ?? 150_000;
      const touch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          this.o.log?.warn({ kind: this.o.kind, idleMs }, 'store watch: connection silent; reconnecting');
          settle('failed');
        }, idleMs);
      };
      const path = resourcePath(this.o.kind, undefined, {
        query: {
          watch: 1,
          resourceVersion: String(this.lastRevision),
          allowWatchBookmarks: true,
          // Like informers: the server ends the watch after 5-10 minutes, so connections are recycled.
          timeoutSeconds: 300 + Math.floor(Math.random() * 300),
        },
      });
      connection.signal.addEventListener('abort', () => settle('ended'), { once: true });
      const refused = await this.o.http.stream(path, connection.signal, (line) => {
        touch();
        const outcome = this.handleLine(line);
        if (outcome) settle(outcome);
      }, (err) => {
        if (err) this.o.log?.warn({ err, kind: this.o.kind }, 'store watch: stream failed');
        settle(err ? 'failed' : 'ended');
      });
      if (refused) {
        if (refused.status === 410) return 'gone';
        this.o.log?.warn({ kind: this.o.kind, status: refused.status, message: kubeStatus(refused.body).message }, 'store watch: refused; retrying');
        return 'failed';
      }
      touch();
      if (!this.connected) {
        this.connected = true;
        this.o.onConnected();
      }
      try {
        return await done;
      } finally {
        clearTimeout(idle);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      connection.abort();
    }
  }

  /** Applies one watch line; returns an outcome when the line ends the connection. */
  private handleLine(line: unknown): 'gone' | 'failed' | undefined {
    const { type, object } = (line ?? {}) as { type?: string; object?: unknown };
    if (type === 'BOOKMARK') {
      const rev = revisionOf(fromCustomResource(object));
      if (rev > this.lastRevision) {
        this.lastRevision = rev;
        this.o.onProgress(rev);
      }
      return undefined;
    }
    if (type === 'ERROR') {
      const status = object as { code?: number; message?: string };
      if (status.code === 410) return 'gone';
      this.o.log?.warn({ kind: this.o.kind, code: status.code, message: status.message }, 'store watch: error event; reconnecting');
      return 'failed';
    }
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return undefined;
    const obj = fromCustomResource(object);
    const rev = revisionOf(obj);
    if (rev <= this.lastRevision) return undefined; // already seen before a reconnect
    this.apply(type, obj, rev);
    return undefined;
  }

  private apply(type: WatchEventType, obj: AnyObject, rev: number): void {
    this.lastRevision = rev;
    const name = obj.metadata.name;
    if (type === 'DELETED') this.o.known.delete(name);
    else this.o.known.set(name, obj);
    if (rev > this.o.deliverAfter) this.o.onEvent({ type, object: deepFreeze(obj), revision: rev });
    else this.o.onProgress(rev);
  }

  /** After 410: list, deliver the difference from `known` in revision order, and go on from the list. */
  private async resync(signal: AbortSignal): Promise<void> {
    const { items, revision } = await listAll({ http: this.o.http }, this.o.kind, { signal });
    const changes: { type: WatchEventType; obj: AnyObject; rev: number }[] = [];
    const listed = new Set<string>();
    for (const item of items) {
      listed.add(item.metadata.name);
      const before = this.o.known.get(item.metadata.name);
      if (!before) changes.push({ type: 'ADDED', obj: item, rev: revisionOf(item) });
      else if (revisionOf(before) !== revisionOf(item)) changes.push({ type: 'MODIFIED', obj: item, rev: revisionOf(item) });
    }
    for (const [name, before] of this.o.known) {
      // Deleted during the gap: the deletion's own revision is gone with the history; the list's stands for it.
      if (!listed.has(name)) changes.push({ type: 'DELETED', obj: { ...before, metadata: { ...before.metadata, resourceVersion: String(revision) } }, rev: revision });
    }
    changes.sort((a, b) => a.rev - b.rev);
    this.o.log?.info({ kind: this.o.kind, from: this.lastRevision, to: revision, changes: changes.length }, 'store watch: history gone (410); resynced from a list');
    for (const c of changes) this.apply(c.type, c.obj, c.rev);
    this.lastRevision = Math.max(this.lastRevision, revision);
    this.o.onProgress(revision);
  }
}
