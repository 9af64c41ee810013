import { performance } from 'node:perf_hooks';
import type { Clock } from '../../shared/clock.js';

/** A Clock whose now() never goes back (performance.now()): for durations that must not follow wall-clock jumps. */
export const monotonicClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
