import { fileSize } from './log-tail.js';

/**
 * Where runs of an instance end in its current.log, from the runtime's process-end events, so
 * that `logs --previous` can show the run before the current one. The size is taken when the
 * process has ended and before the next one starts (restarts wait a back-off), so the boundary
 * is exact. Kept in memory: after an agent restart the previous run is known from the next
 * process end on; a run whose start was not seen starts at the beginning of current.log.
 */
export class RunBoundaries {
  private readonly ends = new Map<string, number[]>();

  constructor(private readonly currentLog: (instance: string) => string) {}

  /** Call when a process of the instance ended. */
  ended(instance: string): void {
    const list = this.ends.get(instance) ?? [];
    list.push(fileSize(this.currentLog(instance)) ?? 0);
    this.ends.set(instance, list.slice(-2));
  }

  forget(instance: string): void {
    this.ends.delete(instance);
  }

  /** Bytes of current.log that the previous run wrote; undefined when unknown (or rotated away). */
  previousRun(instance: string, size: number): { from: number; to: number } | undefined {
    const list = this.ends.get(instance) ?? [];
    const to = list[list.length - 1];
    const from = list.length >= 2 ? (list[list.length - 2] as number) : 0;
    if (to === undefined || to > size || from > to) return undefined;
    return { from, to };
  }
}
