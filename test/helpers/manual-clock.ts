import type { Clock, Timer } from '../../shared/clock.js';

/** A Clock whose timers run only when the test advances time. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return { id } as Timer;
  }

  clearTimeout(timer: Timer): void {
    this.timers.delete((timer as { id: number }).id);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Runs every timer due within `ms`, in order, each at its own time. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let i = 0; i < 100_000; i++) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
