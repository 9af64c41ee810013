/** Options of exponential backoff with full jitter (delays in milliseconds). */
export interface BackoffOptions {
  /** First ceiling; default 500. */
  initialMs?: number;
  /** Upper bound of any delay; default 30 000. */
  maxMs?: number;
  /** Growth per attempt; default 2. */
  factor?: number;
  /** Random source in [0,1); injected by tests. */
  random?: () => number;
}

/**
 * Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): the delay is uniform in
 * [0, min(max, initial * factor^attempt)], so a hub restart does not bring every agent back at once.
 */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.random = options.random ?? Math.random;
  }

  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
    if (ceiling < this.maxMs) this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }
}
