import type { Logger } from '../../shared/logger.js';
import type { WatchEvent } from './store.js';

/** One history entry as a store's backlog reader returns it; `load` builds the event lazily. */
export interface BacklogEntry {
  revision: number;
  kind: string;
  load(): WatchEvent;
}

/** Reads at most `limit` history entries with revision > `after`, oldest first. */
export type BacklogReader = (after: number, limit: number) => BacklogEntry[];

/** Options of {@link Watchers}. */
export interface WatchersOptions {
  readBacklog: BacklogReader;
  /** Where a throwing subscriber is reported. Default: not reported. */
  log?: Logger | undefined;
  /** Backlog entries delivered per event-loop turn during a replay. Default 500. */
  replayPage?: number;
}

interface Subscriber {
  kinds: Set<string> | undefined;
  onEvent: (event: WatchEvent) => void;
  /** The newest revision this subscriber has seen (delivered or filtered out). */
  lastRevision: number;
  /** True while it reads its backlog; the store must not compact past `lastRevision` then. */
  replaying: boolean;
  stopped: boolean;
}

/**
 * The in-process watch fan-out of a store with a single writer. A new subscriber first replays
 * the backlog page by page (the first page synchronously, so a short backlog is delivered before
 * `add` returns), then receives live events. Live events are delivered in revision order even when
 * a subscriber writes from its callback (that write is queued behind the current event), exactly
 * once (a per-subscriber cursor drops what the backlog already delivered), and a throwing
 * subscriber affects neither the write nor the others.
 */
export class Watchers {
  private readonly subscribers = new Set<Subscriber>();
  private readonly queue: WatchEvent[] = [];
  private dispatching = false;
  private closed = false;
  private readonly readBacklog: BacklogReader;
  private readonly log: Logger | undefined;
  private readonly replayPage: number;

  constructor(options: WatchersOptions) {
    this.readBacklog = options.readBacklog;
    this.log = options.log;
    this.replayPage = options.replayPage ?? 500;
  }

  /** Subscribes from `fromRevision` (the caller checked it is still resumable). */
  add(options: { kinds?: readonly string[] | undefined; fromRevision: number; signal?: AbortSignal | undefined }, onEvent: (event: WatchEvent) => void): { stop(): void } {
    const sub: Subscriber = {
      kinds: options.kinds ? new Set(options.kinds) : undefined,
      onEvent,
      lastRevision: options.fromRevision,
      replaying: true,
      stopped: false,
    };
    const signal = options.signal;
    const onAbort = () => stop();
    const stop = () => {
      sub.stopped = true;
      this.subscribers.delete(sub);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted || this.closed) {
      stop();
      return { stop };
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    this.subscribers.add(sub);
    this.replay(sub);
    return { stop };
  }

  /** The lowest revision a replaying subscriber still needs to read past; compaction stops there. */
  pinnedRevision(): number {
    let pinned = Infinity;
    for (const sub of this.subscribers) if (sub.replaying) pinned = Math.min(pinned, sub.lastRevision);
    return pinned;
  }

  /** Delivers a committed event to the live subscribers. Call after the commit, never inside it. */
  publish(event: WatchEvent): void {
    this.queue.push(event);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        for (const sub of this.subscribers) if (!sub.replaying) this.deliver(sub, next);
      }
    } finally {
      this.dispatching = false;
    }
  }

  /** Ends every subscription; later `add` calls return stopped handles. */
  close(): void {
    this.closed = true;
    for (const sub of this.subscribers) sub.stopped = true;
    this.subscribers.clear();
    this.queue.length = 0;
  }

  private deliver(sub: Subscriber, event: WatchEvent): void {
    if (sub.stopped || event.revision <= sub.lastRevision) return;
    sub.lastRevision = event.revision;
    if (sub.kinds && !sub.kinds.has(event.object.kind)) return;
    try {
      sub.onEvent(event);
    } catch (err) {
      this.log?.warn({ err, revision: event.revision }, 'store watch subscriber threw; event skipped for it');
    }
  }

  /**
   * Delivers one page of backlog; goes live when the page reaches the newest revision, else goes
   * on in a later turn. Writes made meanwhile are in the backlog and read by a later page.
   */
  private replay(sub: Subscriber): void {
    if (sub.stopped || this.closed) return;
    const entries = this.readBacklog(sub.lastRevision, this.replayPage);
    for (const entry of entries) {
      if (sub.stopped) return;
      if (sub.kinds && !sub.kinds.has(entry.kind)) sub.lastRevision = entry.revision;
      else this.deliver(sub, entry.load());
    }
    if (entries.length < this.replayPage) sub.replaying = false;
    else setImmediate(() => this.replayLater(sub));
  }

  private replayLater(sub: Subscriber): void {
    try {
      this.replay(sub);
    } catch (err) {
      // No caller to throw to any more: end the subscription rather than crash the process.
      this.log?.error({ err, revision: sub.lastRevision }, 'store watch replay failed; subscription ended');
      sub.stopped = true;
      this.subscribers.delete(sub);
    }
  }
}

/** Freezes an object graph, so that one event object can be shared by every subscriber. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
