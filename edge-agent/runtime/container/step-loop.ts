/**
 * Runs an asynchronous `step` one at a time. `kick()` may come from anywhere (a reconcile, a poll,
 * a probe, a timer, or a step that wants the next one at once); kicks while a step runs coalesce
 * into one more round. Bounded: at most `maxRounds` rounds per loop, and a step that throws ends it.
 */
export class StepLoop {
  private running = false;
  private pending = false;

  constructor(
    private readonly options: {
      step: () => Promise<void>;
      /** Whether steps may still run (not detached, not removed). */
      active: () => boolean;
      onSuccess: () => void;
      onError: (err: unknown) => void;
      maxRounds?: number;
    },
  ) {}

  /** A step is in flight. */
  get busy(): boolean {
    return this.running;
  }

  kick(): void {
    if (!this.options.active()) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = true;
    void this.loop();
  }

  /** Never rejects. */
  private async loop(): Promise<void> {
    const max = this.options.maxRounds ?? 100;
    for (let round = 0; round < max; round++) {
      this.pending = false;
      try {
        await this.options.step();
        this.options.onSuccess();
      } catch (err) {
        this.options.onError(err);
        break;
      }
      if (!this.pending || !this.options.active()) break;
    }
    this.running = false;
    if (this.pending) this.kick();
  }
}
