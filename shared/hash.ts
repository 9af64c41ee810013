import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so that equal values always serialize (and hash) the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

export function shortHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 12);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

const digests = new WeakMap<object, string>();

/**
 * Digest of what an agent needs of an object: identity, labels, annotations and spec. Status and
 * resourceVersion are left out (a status change is nothing to send down), and so is anything a
 * restored hub could reuse: two objects with the same digest have the same content.
 */
export function objectDigest(obj: { kind: string; metadata: { name: string; uid?: string; generation?: number; labels?: unknown; annotations?: unknown }; spec?: unknown }): string {
  const cached = digests.get(obj);
  if (cached) return cached;
  const m = obj.metadata;
  const d = shortHash({ k: obj.kind, n: m.name, u: m.uid ?? '', g: m.generation ?? 0, l: m.labels ?? {}, a: m.annotations ?? {}, s: obj.spec ?? null });
  digests.set(obj, d);
  return d;
}
