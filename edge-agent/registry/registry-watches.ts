import { OutpostError } from '../../shared/errors.js';
import type { Registry } from './records.js';

export type WatchKind = 'blocking' | 'stream';

export interface RegistryWatchesOptions {
  /** Open watches (blocking and streams together) beyond which new ones are refused with 503. Default 1 024. */
  maxWatchers?: number;
}

interface Waiter {
  ready(): boolean;
  done(): void;
}

/**
 * Blocking queries: a request waits until its condition holds after a change, its time runs out,
 * or its client goes away. The number of open watches is bounded.
 */
export class RegistryWatches {
  private readonly waiters = new Set<Waiter>();
  private readonly open: Record<WatchKind, number> = { blocking: 0, stream: 0 };
  private readonly maxWatchers: number;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly registry: Registry, options: RegistryWatchesOptions = {}, private readonly onCount?: (kind: WatchKind, open: number) => void) {
    this.maxWatchers = options.maxWatchers ?? 1024;
  }

  start(): void {
    this.unsubscribe = this.registry.onChange(() => {
      for (const w of [...this.waiters]) if (w.ready()) w.done();
    });
  }

  /** Ends every blocking wait (they answer with what they have). */
  stop(): void {
    this.unsubscribe?.();
    for (const w of [...this.waiters]) w.done();
  }

  /** Takes a watch slot; throws UNAVAILABLE when all are taken. Call the returned function exactly once to give it back. */
  acquire(kind: WatchKind): () => void {
    if (this.open.blocking + this.open.stream >= this.maxWatchers) {
      throw new OutpostError('UNAVAILABLE', `too many open registry watches (limit ${this.maxWatchers}); retry later`);
    }
    this.open[kind]++;
    this.onCount?.(kind, this.open[kind]);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open[kind]--;
      this.onCount?.(kind, this.open[kind]);
    };
  }

  counts(): Record<WatchKind, number> {
    return { ...this.open };
  }

  /** Resolves once `ready()` is true after a registry change, after timeoutMs, or when signal aborts. */
  wait(ready: () => boolean, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (ready() || signal.aborted) return resolve();
      const waiter: Waiter = {
        ready,
        done: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', waiter.done);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, timeoutMs);
      signal.addEventListener('abort', waiter.done, { once: true });
      this.waiters.add(waiter);
    });
  }
}
