import { OutpostError } from './errors.js';

const MEMORY_SUFFIX: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** CPU quantity ("250m", "0.5", "2") in millicores. Throws BAD_REQUEST naming the value. */
export function parseCpuMillis(q: string): number {
  const m = /^([0-9]+)m$/.exec(q);
  if (m) return Number(m[1]);
  if (/^[0-9]+(\.[0-9]{1,3})?$/.test(q)) return Math.round(Number(q) * 1000);
  throw new OutpostError('BAD_REQUEST', `cpu quantity "${q}": use cores (0.5, 2) or millicores (250m)`);
}

/** Memory quantity ("67108864", "64Mi", "1G") in bytes. Throws BAD_REQUEST naming the value. */
export function parseMemoryBytes(q: string): number {
  const m = /^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  const factor = m ? MEMORY_SUFFIX[m[2] ?? ''] : undefined;
  if (!m || factor === undefined) throw new OutpostError('BAD_REQUEST', `memory quantity "${q}": use bytes or a suffix Ki, Mi, Gi, Ti, k, M, G, T (64Mi, 1G)`);
  return Number(m[1]) * factor;
}
