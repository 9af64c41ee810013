import { setMaxListeners } from 'node:events';
import { KINDS, type AnyObject, type KindName } from '../../../shared/api/index.js';
import type { Clock } from '../../../shared/clock.js';
import { OutpostError, isOutpostError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/logger.js';
import type { WatchEvent, WatchOptions } from '../store.js';
import { KindStream, type KindStreamTuning } from './kind-stream.js';
import type { KubeHttp } from './kube-http.js';
import { listAll } from './list-all.js';
import type { RetryOptions } from './retry.js';
import { WatchMerger } from './watch-merger.js';

/** What a store watch needs from its store. */
export interface StoreWatchDeps {
  http: KubeHttp;
  clock: Clock;
  log?: Logger | undefined;
  retry?: RetryOptions | undefined;
  currentRevision: () => Promise<number>;
}

/** Tuning of store watches. */
export interface StoreWatchTuning extends KindStreamTuning {
  /** See {@link WatchMerger}: how long an event waits for other kinds' streams; default 100 ms. */
  holdBackMs?: number;
  /** Deliver anyway when some kind's stream has not connected after this long, in ms; default 10 000. */
  connectTimeoutMs?: number;
}

/**
 * Starts a store watch: for each kind, the subscriber's view at `fromRevision` (a list at exactly
 * that revision, which also tells whether etcd still has the history: REVISION_TOO_OLD if not),
 * then one Kubernetes watch per kind from there, merged into revision order. A fromRevision in the
 * future watches from the newest revision and delivers only what comes after fromRevision.
 */
export async function startStoreWatch(deps: StoreWatchDeps, tuning: StoreWatchTuning, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<{ stop(): void }> {
  const from = options.fromRevision;
  if (!Number.isSafeInteger(from) || from < 0) {
    throw new OutpostError('BAD_REQUEST', `watch: fromRevision must be an integer >= 0, got ${String(from)}`);
  }
  const kinds: KindName[] = options.kinds ? [...new Set(options.kinds)] : KINDS.map((k) => k.kind);
  const controller = new AbortController();
  // Each kind's stream and its reconnect wait listen on this signal.
  setMaxListeners(4 * kinds.length + 8, controller.signal);
  const stop = () => controller.abort();
  if (options.signal?.aborted) return { stop };
  options.signal?.addEventListener('abort', stop, { once: true });

  const starts = await initialViews(deps, kinds, from, controller.signal);
  if (controller.signal.aborted) return { stop };

  let stopped = false;
  const merger = new WatchMerger({
    streams: kinds.length,
    holdBackMs: tuning.holdBackMs ?? 100,
    clock: deps.clock,
    deliver: (event) => {
      if (stopped) return;
      try {
        onEvent(event);
      } catch (err) {
        deps.log?.warn({ err, revision: event.revision }, 'store watch subscriber threw; event skipped for it');
      }
    },
  });
  const connected = new Set<KindName>();
  const connectTimer = deps.clock.setTimeout(() => {
    const waiting = kinds.filter((k) => !connected.has(k));
    if (waiting.length === 0) return;
    deps.log?.warn({ kinds: waiting }, 'store watch: these kinds have not connected yet; delivering the others without them');
    merger.readyAll();
  }, tuning.connectTimeoutMs ?? 10_000);
  controller.signal.addEventListener('abort', () => {
    stopped = true;
    deps.clock.clearTimeout(connectTimer);
    merger.stop();
  }, { once: true });

  kinds.forEach((kind, i) => {
    const start = starts[i]!;
    const stream = new KindStream({
      ...tuning,
      http: deps.http,
      kind,
      log: deps.log,
      known: start.known,
      startRevision: start.revision,
      deliverAfter: from,
      onEvent: (e) => merger.push(i, e),
      onProgress: (rev) => merger.advance(i, rev),
      onConnected: () => {
        connected.add(kind);
        if (connected.size === kinds.length) deps.clock.clearTimeout(connectTimer);
        merger.ready(i);
      },
    });
    merger.advance(i, start.revision);
    stream.run(controller.signal).catch((err: unknown) => {
      deps.log?.error({ err, kind }, 'store watch stream ended unexpectedly');
    });
  });
  return {
    stop: () => {
      options.signal?.removeEventListener('abort', stop);
      stop();
    },
  };
}

/** Per kind: the objects at `from` and the revision to watch from. */
async function initialViews(deps: StoreWatchDeps, kinds: KindName[], from: number, signal: AbortSignal): Promise<{ known: Map<string, AnyObject>; revision: number }[]> {
  const current = await deps.currentRevision();
  // Revision 0 is "any" to the API server; the oldest real revision is 1.
  const at = Math.max(from, 1);
  return Promise.all(kinds.map(async (kind) => {
    if (at <= current) return { known: byName((await exactList(deps, kind, at, from, signal)).items), revision: at };
    // In the future: the newest state, watched from its revision; events up to `from` update the view silently.
    const now = await listAll(deps, kind, { signal });
    if (now.revision >= at) return { known: byName((await exactList(deps, kind, at, from, signal)).items), revision: at };
    return { known: byName(now.items), revision: now.revision };
  }));
}

async function exactList(deps: StoreWatchDeps, kind: KindName, at: number, from: number, signal: AbortSignal) {
  try {
    return await listAll(deps, kind, { exactRevision: at, signal });
  } catch (err) {
    if (!isOutpostError(err, 'REVISION_TOO_OLD')) throw err;
    throw new OutpostError(
      'REVISION_TOO_OLD',
      `watch from revision ${from}: the API server's history (etcd) was compacted past it (list again, then watch from the list's revision)`,
      { cause: err },
    );
  }
}

function byName(items: AnyObject[]): Map<string, AnyObject> {
  return new Map(items.map((o) => [o.metadata.name, o]));
}
