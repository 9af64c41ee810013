/** Options of the admission queue. */
export interface AdmissionOptions {
  /** Sessions admitted per second on average. Default 500. */
  ratePerSecond?: number;
  /** Sessions admitted at once after a quiet period. Default 200. */
  burst?: number;
}

/**
 * A token bucket in front of session admission (the hello, which costs a desired-set computation
 * and a resync). After a hub restart every agent reconnects at once; admitting them at a steady
 * rate turns the storm into a queue. A queued session is already open and answers pings, so a
 * node waiting here is never mistaken for a dead one.
 */
export class AdmissionQueue {
  private tokens: number;
  private last: number;
  private readonly queue: { run: () => void; cancelled: () => boolean }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly rate: number;
  private readonly burst: number;

  constructor(options: AdmissionOptions = {}, private readonly now: () => number = Date.now) {
    this.rate = options.ratePerSecond ?? 500;
    this.burst = options.burst ?? 200;
    this.tokens = this.burst;
    this.last = now();
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Runs `run` now or once a token is free; skipped if `cancelled()` by then (socket closed). */
  enqueue(run: () => void, cancelled: () => boolean): void {
    this.queue.push({ run, cancelled });
    this.drain();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  private drain(): void {
    this.refill();
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (head?.cancelled()) {
        this.queue.shift();
        continue;
      }
      if (this.tokens < 1) break;
      this.tokens -= 1;
      this.queue.shift();
      head?.run();
    }
    if (this.queue.length > 0 && !this.timer) {
      const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.rate) * 1000));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, wait);
    }
  }
}
