// Failed device logins, limited per key (a client address, a username) with a token bucket: each
// key may fail `failures` times in a burst and earns them back evenly over `perMs`. A key with an
// empty bucket is refused before its password is checked (scrypt is the expensive part), and
// only that key: other addresses and usernames are not affected.

/** `failures` failed logins per `perMs`; `failures: 0` turns the limit off. */
export interface LoginLimit {
  failures: number;
  perMs: number;
}

export interface LoginLimiterOptions {
  limit: LoginLimit;
  /** Keys remembered at most; beyond it refilled buckets, then the oldest, are forgotten. Default 10 000. */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class LoginLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** key -> logins being checked now (see `begin`). */
  private readonly checking = new Map<string, number>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(private readonly options: LoginLimiterOptions) {
    this.maxKeys = options.maxKeys ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** True while `key` has no failure left: refuse its login without checking it. */
  limited(key: string): boolean {
    if (this.options.limit.failures <= 0) return false;
    const bucket = this.buckets.get(key);
    return bucket !== undefined && this.refill(bucket) < 1;
  }

  /**
   * Starts checking a login of `key`, or returns false when the checks already under way could
   * spend every failure it has left: guesses sent at once are then not all checked before the
   * first of them is charged. Call `end` when the check is over.
   */
  begin(key: string): boolean {
    const { failures } = this.options.limit;
    if (failures <= 0) return true;
    const bucket = this.buckets.get(key);
    const left = bucket === undefined ? failures : this.refill(bucket);
    const checking = this.checking.get(key) ?? 0;
    if (left - checking < 1) return false;
    this.checking.set(key, checking + 1);
    return true;
  }

  end(key: string): void {
    const checking = (this.checking.get(key) ?? 0) - 1;
    if (checking > 0) this.checking.set(key, checking);
    else this.checking.delete(key);
  }

  /** A failed login by `key`. */
  failed(key: string): void {
    const { failures } = this.options.limit;
    if (failures <= 0) return;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.evict();
      bucket = { tokens: failures, at: this.now() };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.max(0, this.refill(bucket) - 1);
  }

  /** Keys currently remembered (tests, metrics). */
  size(): number {
    return this.buckets.size;
  }

  private refill(bucket: Bucket): number {
    const { failures, perMs } = this.options.limit;
    const now = this.now();
    bucket.tokens = Math.min(failures, bucket.tokens + ((now - bucket.at) * failures) / perMs);
    bucket.at = now;
    return bucket.tokens;
  }

  private evict(): void {
    for (const [key, bucket] of this.buckets) if (this.refill(bucket) >= this.options.limit.failures) this.buckets.delete(key);
    while (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) break;
      this.buckets.delete(oldest);
    }
  }
}

const DURATION = /^(\d+)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Parses `<failures>/<duration>` (e.g. `10/1m`), or `0` / `off` for no limit; throws a message naming `flag`. */
export function parseLoginLimit(text: string, flag: string): LoginLimit {
  if (text === '0' || text === 'off') return { failures: 0, perMs: 60_000 };
  const [count, duration] = text.split('/');
  const failures = Number(count);
  const d = DURATION.exec(duration ?? '');
  if (!Number.isInteger(failures) || failures < 1 || failures > 1_000_000 || !d) {
    throw new Error(`${flag}: "${text}" is not <failures>/<duration> such as 10/1m (or 0 for no limit)`);
  }
  const perMs = Number(d[1]) * UNIT_MS[d[2]!]!;
  if (perMs < 1) throw new Error(`${flag}: the duration in "${text}" must be above 0`);
  return { failures, perMs };
}
