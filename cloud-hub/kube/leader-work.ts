import type { Logger } from '../../shared/logger.js';
import { startAll, stopAll, type Component } from '../../shared/lifecycle.js';

export interface LeaderWorkOptions {
  /** Each component's stop is bounded by this, ms. Default 10 000. */
  graceMs?: number;
  /** After a failed start, the next try while still leader, ms. Default 2 000. */
  retryMs?: number;
}

/**
 * The hub's leader-only components (scheduler, controllers): built fresh for every leadership term
 * (a stopped ControllerLoop does not start again) and started when this replica is elected;
 * stopped as soon as leadership is lost. Transitions run one at a time, in order, so a quick
 * lose-and-win never runs two generations at once.
 */
export class LeaderWork {
  private wanted = false;
  private running: Component[] | undefined;
  private chain: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private terms = 0;

  constructor(private readonly deps: { build: () => Component[]; log: Logger }, private readonly options: LeaderWorkOptions = {}) {}

  /** Leadership terms started so far. */
  get startedTerms(): number {
    return this.terms;
  }

  get active(): boolean {
    return this.running !== undefined;
  }

  elected(): void {
    this.wanted = true;
    this.enqueue();
  }

  deposed(): void {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.enqueue();
  }

  /** Stops the work (if any) and resolves when it has stopped. */
  async stop(): Promise<void> {
    this.deposed();
    await this.chain;
  }

  private enqueue(): void {
    this.chain = this.chain.then(() => this.converge()).catch((err: unknown) => this.deps.log.error({ err }, 'leader-only work transition failed'));
  }

  private async converge(): Promise<void> {
    const grace = this.options.graceMs ?? 10_000;
    const onError = (name: string, err: unknown) => this.deps.log.error({ err, component: name }, 'leader-only component stop failed');
    if (!this.wanted && this.running) {
      const comps = this.running;
      this.running = undefined;
      await stopAll(comps, grace, onError);
      this.deps.log.info('leader-only work stopped');
    } else if (this.wanted && !this.running) {
      const comps = this.deps.build();
      try {
        await startAll(comps, grace, onError);
      } catch (err) {
        this.deps.log.error({ err }, 'starting leader-only work failed; retrying');
        this.retryTimer = setTimeout(() => { if (this.wanted) this.enqueue(); }, this.options.retryMs ?? 2_000);
        this.retryTimer.unref();
        return;
      }
      this.running = comps;
      this.terms++;
      this.deps.log.info({ components: comps.map((c) => c.name) }, 'leader-only work started');
      // Deposed while starting: the next queued transition stops it.
    }
  }
}
