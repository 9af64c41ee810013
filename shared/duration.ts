import { OutpostError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `1500ms`, `30s`, `10m`, `24h`, `7d`, and combinations such as `1h30m`, into milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const t = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * (UNITS[m[2] ?? ''] ?? 0);
    consumed = re.lastIndex;
  }
  if (t === '' || consumed !== t.length) {
    throw new OutpostError('BAD_REQUEST', `${what}: "${text}" is not a duration (examples: 500ms, 30s, 10m, 24h, 7d)`);
  }
  return Math.round(total);
}
