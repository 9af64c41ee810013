import type { Histogram } from 'prom-client';

const MAX_TRACKED = 100_000;

/**
 * Twin convergence lag: seconds from a desired change (a Device's generation bump, seen by this
 * hub process) to the device acknowledging it (status.observedDesired >= that generation).
 * In memory: a change made before a hub restart is not measured. A device that acknowledges a
 * later generation first closes the older ones too, each measured from its own change.
 */
export class TwinConvergence {
  /** device -> generation -> time of the change (ms). */
  private readonly pending = new Map<string, Map<number, number>>();
  private size = 0;

  constructor(private readonly histogram: Pick<Histogram, 'observe'>, private readonly now: () => number = Date.now) {}

  /** The device's desired twin changed to `generation`. */
  desiredChanged(device: string, generation: number): void {
    if (this.size >= MAX_TRACKED) return;
    const byGen = this.pending.get(device) ?? new Map<number, number>();
    if (byGen.has(generation)) return;
    byGen.set(generation, this.now());
    this.pending.set(device, byGen);
    this.size++;
  }

  /** The device acknowledged `observed`: every pending generation up to it converged now. */
  acknowledged(device: string, observed: number): void {
    const byGen = this.pending.get(device);
    if (!byGen) return;
    const now = this.now();
    for (const [gen, at] of byGen) {
      if (gen > observed) continue;
      this.histogram.observe(Math.max(0, now - at) / 1000);
      byGen.delete(gen);
      this.size--;
    }
    if (byGen.size === 0) this.pending.delete(device);
  }

  /** A deleted device is no longer waited for. */
  forget(device: string): void {
    this.size -= this.pending.get(device)?.size ?? 0;
    this.pending.delete(device);
  }
}
