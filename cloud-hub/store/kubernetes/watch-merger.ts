import type { Clock, Timer } from '../../../shared/clock.js';
import type { WatchEvent } from '../store.js';

/** Options of {@link WatchMerger}. */
export interface WatchMergerOptions {
  /** Number of input streams (one per kind). */
  streams: number;
  /** How long an event may wait for slower streams before it is delivered anyway, in ms. */
  holdBackMs: number;
  clock: Clock;
  deliver: (event: WatchEvent) => void;
}

interface Pending {
  event: WatchEvent;
  arrivedAt: number;
}

/**
 * Merges per-kind Kubernetes watch streams into one sequence in revision order, as far as it can
 * know it. Each stream is in revision order on its own (the API server guarantees that per
 * resource). An event is delivered once every stream has reported progress (an event or a
 * bookmark) at or past its revision, or once it has waited `holdBackMs` for streams that are quiet
 * or slow; buffered events always leave lowest revision first. So:
 * - per kind (and per object) order always holds;
 * - across kinds, order holds unless one stream lags another by more than `holdBackMs`, in which
 *   case the late event is delivered late (never dropped), after higher revisions of other kinds.
 * Until every stream is connected (`ready`), nothing is delivered, so that the replays of all
 * kinds are merged rather than raced.
 */
export class WatchMerger {
  private readonly progress: number[];
  private readonly connected: boolean[];
  private readyAt: number | undefined;
  private pending: Pending[] = [];
  private timer: Timer | undefined;
  private stopped = false;

  constructor(private readonly options: WatchMergerOptions) {
    this.progress = new Array<number>(options.streams).fill(0);
    this.connected = new Array<boolean>(options.streams).fill(false);
  }

  /** Stream `i` is connected (its first watch request was answered). */
  ready(i: number): void {
    if (this.connected[i]) return;
    this.connected[i] = true;
    if (this.connected.every(Boolean)) {
      this.readyAt = this.options.clock.now();
      this.flush();
    }
  }

  /**
   * Stops waiting for streams that have not connected (they keep retrying; their events arrive
   * late): one kind the API server refuses must not hold back every other kind.
   */
  readyAll(): void {
    for (let i = 0; i < this.connected.length; i++) this.ready(i);
  }

  /** Stream `i` has seen everything up to `revision` (a bookmark, or a list it resynced from). */
  advance(i: number, revision: number): void {
    if (revision <= (this.progress[i] ?? 0)) return;
    this.progress[i] = revision;
    this.flush();
  }

  push(i: number, event: WatchEvent): void {
    if (this.stopped) return;
    this.progress[i] = Math.max(this.progress[i] ?? 0, event.revision);
    const entry = { event, arrivedAt: this.options.clock.now() };
    // Insert keeping revision order; streams mostly arrive in order, so scan from the end.
    let at = this.pending.length;
    while (at > 0 && this.pending[at - 1]!.event.revision > event.revision) at--;
    this.pending.splice(at, 0, entry);
    this.flush();
  }

  stop(): void {
    this.stopped = true;
    this.pending = [];
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private flush(): void {
    if (this.stopped || this.readyAt === undefined) return;
    const now = this.options.clock.now();
    const floor = Math.min(...this.progress);
    while (this.pending.length > 0 && !this.stopped) {
      const head = this.pending[0]!;
      const waitedFrom = Math.max(head.arrivedAt, this.readyAt);
      if (head.event.revision > floor && now - waitedFrom < this.options.holdBackMs) break;
      this.pending.shift();
      this.options.deliver(head.event);
    }
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const head = this.pending[0];
    if (head && !this.stopped) {
      const due = Math.max(head.arrivedAt, this.readyAt) + this.options.holdBackMs - now;
      this.timer = this.options.clock.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, Math.max(1, due));
    }
  }
}
