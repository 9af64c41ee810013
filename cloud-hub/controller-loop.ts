import type { Logger } from '../shared/logger.js';

/**
 * Runs `pass` after changes, debounced: triggers arriving while a pass runs coalesce into one
 * more pass afterwards; a failed pass is retried after `retryMs` (a store failure must not
 * become a tight loop). Passes never overlap.
 */
export class ControllerLoop {
  private timer: NodeJS.Timeout | undefined;
  private timerDue = 0;
  private running: Promise<void> | undefined;
  private again = false;
  private againDelay: number | undefined;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly pass: () => Promise<void>,
    private readonly log: Logger,
    private readonly options: { debounceMs?: number; retryMs?: number } = {},
  ) {}

  /**
   * Asks for a pass within `delayMs` (default: the debounce). A longer delay lets changes that
   * may wait (e.g. counts) coalesce into fewer passes; a shorter request made meanwhile wins.
   */
  trigger(delayMs = this.options.debounceMs ?? 20): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      this.againDelay = Math.min(this.againDelay ?? delayMs, delayMs);
      return;
    }
    const due = Date.now() + delayMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.run().finally(() => {
        this.running = undefined;
        if (this.again) {
          const delay = this.againDelay;
          this.again = false;
          this.againDelay = undefined;
          this.trigger(delay);
        }
      });
    }, delayMs);
  }

  /** Asks for one more pass after the current one (a write raced with another writer). */
  requeue(): void {
    this.again = true;
    this.againDelay = Math.min(this.againDelay ?? (this.options.debounceMs ?? 20), this.options.debounceMs ?? 20);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Resolves when no pass is pending or running. */
  async idle(): Promise<void> {
    while (this.running || this.timer) await (this.running ?? new Promise((r) => setTimeout(r, this.options.debounceMs ?? 20)));
  }

  private async run(): Promise<void> {
    try {
      await this.pass();
    } catch (err) {
      this.log.error({ err }, `${this.name} pass failed; retrying in ${(this.options.retryMs ?? 1000) / 1000} s`);
      setTimeout(() => this.trigger(), this.options.retryMs ?? 1000).unref();
    }
  }
}
