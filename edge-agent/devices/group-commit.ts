import type { Outbox, OutboxPut } from '../cache/outbox.js';

export interface GroupCommitOptions {
  /** A batch is written at the latest when this many rows wait. Default 2 000. */
  maxBatch?: number;
  /** Rows arriving within this many ms share one commit (0 = the rest of this event-loop turn). Default 0. */
  delayMs?: number;
}

interface Pending {
  put: OutboxPut;
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
    this.queue.push({ put, done });
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
    try {
      this.outbox.putBatch(batch.map((p) => p.put));
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    if (!error) this.onCommitted(batch.length, performance.now() - started);
    for (const p of batch) p.done(error);
  }
}
