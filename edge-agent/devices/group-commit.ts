import type { Outbox, OutboxPut } from '../cache/outbox.js';

export interface GroupCommitOptions {
  /** A batch is written at the latest when this many rows wait. Default 2 000. */
  maxBatch?: number;
  /** Rows arriving within this many ms share one commit (0 = the rest of this event-loop turn). Default 0. */
  delayMs?: number;
}

interface Pending {
  /** Undefined: nothing to write, `done` only keeps its place in the order (see `after`). */
  put: OutboxPut | undefined;
  done: (err?: Error) => void;
}

/**
 * Group commit: rows queued within one event-loop turn (or `delayMs`) are written to the outbox in
 * one transaction, in queue order; each row's `done` runs only after that commit, so a QoS 1
 * PUBACK released from `done` means the message is on disk.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly delayMs: number;
  onCommitted: (rows: number, ms: number) => void = () => {};

  constructor(private readonly outbox: Outbox, options: GroupCommitOptions = {}) {
    this.maxBatch = options.maxBatch ?? 2_000;
    this.delayMs = options.delayMs ?? 0;
  }

  add(put: OutboxPut, done: (err?: Error) => void): void {
    this.enqueue({ put, done });
  }

  /**
   * Runs `done` in queue order, right after the rows queued before it are committed: a refused
   * message's acknowledgement then goes out after those of the accepted messages before it.
   */
  after(done: () => void): void {
    this.enqueue({ put: undefined, done: () => done() });
  }

  private enqueue(pending: Pending): void {
    this.queue.push(pending);
    if (this.queue.length >= this.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      if (this.delayMs > 0) setTimeout(() => this.flush(), this.delayMs);
      else setImmediate(() => this.flush());
    }
  }

  /** Writes everything queued now (also called on stop). */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const started = performance.now();
    let error: Error | undefined;
    const rows: OutboxPut[] = [];
    for (const p of batch) if (p.put) rows.push(p.put);
    try {
      if (rows.length > 0) this.outbox.putBatch(rows);
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    if (!error && rows.length > 0) this.onCommitted(rows.length, performance.now() - started);
    for (const p of batch) p.done(p.put ? error : undefined);
  }
}
