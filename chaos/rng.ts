import { randomInt } from 'node:crypto';

/**
 * A seeded pseudo-random generator (sfc32, seeded through splitmix32). The same seed gives the
 * same stream on every platform and Node version, which is what makes a chaos run replayable:
 * every decision of the harness (which fault, which target, how long, which desired-state change)
 * is drawn from one of these.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is used as an unsigned 32-bit integer. */
  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** The next unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    if (max < min) throw new RangeError(`int(${min}, ${max}): empty range`);
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** One of the entries, with probability proportional to its weight. */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((sum, [, w]) => sum + Math.max(0, w), 0);
    if (total <= 0) throw new RangeError('weighted pick with no positive weight');
    let x = this.float() * total;
    for (const [value, w] of entries) {
      if (w <= 0) continue;
      x -= w;
      if (x < 0) return value;
    }
    return entries.filter(([, w]) => w > 0).at(-1)![0];
  }

  /**
   * An independent stream for one concern (faults, workload, crash targets): adding a draw to one
   * concern does not shift the decisions of the others.
   */
  fork(label: string): Rng {
    let h = 0x811c9dc5;
    for (const ch of label) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    return new Rng((this.seed ^ h) >>> 0);
  }
}

/** A fresh seed for a run that was not given one (always printed, so the run can be replayed). */
export function randomSeed(): number {
  return randomInt(0, 2 ** 32);
}
