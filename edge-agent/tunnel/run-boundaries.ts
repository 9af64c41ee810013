import { fileSize } from './log-tail.js';

/**
 * Where each run of an instance begins in its current.log, from the runtime's Started events,
 * so that `logs --previous` can show the run before the current one. Kept in memory: after an
 * agent restart the previous run is known again from the next restart on. The offset is taken
 * just after the start, so a run's first bytes may count as the run before.
 */
export class RunBoundaries {
  private readonly starts = new Map<string, number[]>();

  constructor(private readonly currentLog: (instance: string) => string) {}

  /** Call on every Started event of an instance. */
  started(instance: string): void {
    const list = this.starts.get(instance) ?? [];
    list.push(fileSize(this.currentLog(instance)) ?? 0);
    this.starts.set(instance, list.slice(-2));
  }

  forget(instance: string): void {
    this.starts.delete(instance);
  }

  /** Bytes of current.log that the previous run wrote; undefined when unknown (or rotated away). */
  previousRun(instance: string, size: number): { from: number; to: number } | undefined {
    const list = this.starts.get(instance) ?? [];
    const last = list[list.length - 1];
    if (last === undefined || last > size || (list.length < 2 && last === 0)) return undefined;
    const before = list.length >= 2 ? (list[list.length - 2] as number) : 0;
    if (before > last) return undefined;
    return { from: before, to: last };
  }
}
