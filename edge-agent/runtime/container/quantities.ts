// Resource quantities of a template (shared/api/workload.ts CpuQuantitySchema and
// MemoryQuantitySchema) as the engine's units. Both throw an Error naming the bad value.

/** CPU cores ("0.5", "2") or millicores ("250m") as nano-CPUs (1 core = 1e9). */
export function parseCpu(text: string): number {
  const milli = /^([0-9]+)m$/.exec(text);
  if (milli) return Number(milli[1]) * 1_000_000;
  if (/^[0-9]+(\.[0-9]{1,3})?$/.test(text)) return Math.round(Number(text) * 1_000_000) * 1000;
  throw new Error(`cpu "${text}": expected cores such as 0.5 or 2, or millicores such as 250m`);
}

const MEMORY_UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** Bytes, or with a decimal (k, M, G, T) or binary (Ki, Mi, Gi, Ti) suffix, as bytes. */
export function parseMemory(text: string): number {
  const m = /^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(text);
  const factor = MEMORY_UNITS[m?.[2] ?? ''];
  if (!m || factor === undefined) throw new Error(`memory "${text}": expected bytes such as 67108864, or with a suffix such as 64Mi or 1G`);
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes)) throw new Error(`memory "${text}": too large`);
  return bytes;
}
