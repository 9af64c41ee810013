import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this many ms; default 5000. */
  timeoutMs?: number;
  /** Check interval in ms; default 25. */
  intervalMs?: number;
  /** Names the condition in the timeout error. */
  message?: string;
}

/** `T` without the falsy values `waitFor` keeps waiting through. */
export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/**
 * Calls `check` until it returns a truthy value (returned) or the deadline passes (throws, with the
 * last error `check` threw as cause). Every wait in tests is bounded by one of these.
 */
export async function waitFor<T>(check: () => T | Promise<T>, options: WaitOptions = {}): Promise<Truthy<T>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.message ?? 'condition'}`, { cause: lastError });
    }
    await delay(intervalMs);
  }
}

/** Resolves after `ms`: for asserting that something did NOT happen within a bounded window. */
export function pause(ms: number): Promise<void> {
  return delay(ms);
}

/** Rejects when `p` has not settled within `ms`: a bound for waits on one promise (an exit, a transfer). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); })]).finally(() => clearTimeout(timer));
}
