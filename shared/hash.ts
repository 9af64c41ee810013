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

/**
 * Whether two values serialize to the same canonical JSON (object key order ignored, keys whose
 * value is undefined ignored, non-finite numbers equal to null), without serializing: the store
 * and the controllers compare every written object, so this runs on each write.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  return jsonEqual(a, b);
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const ta = jsonType(a);
  const tb = jsonType(b);
  if (ta === 'other' || tb === 'other') return canonicalJson(a) === canonicalJson(b);
  if (ta !== tb) return false;
  if (ta === 'null') return true;
  if (ta === 'array') {
    const xa = a as unknown[];
    const xb = b as unknown[];
    if (xa.length !== xb.length) return false;
    // JSON writes undefined array slots as null.
    for (let i = 0; i < xa.length; i++) if (!jsonEqual(xa[i] === undefined ? null : xa[i], xb[i] === undefined ? null : xb[i])) return false;
    return true;
  }
  if (ta === 'object') {
    const oa = a as Record<string, unknown>;
    const ob = b as Record<string, unknown>;
    let na = 0;
    for (const k in oa) {
      if (!Object.hasOwn(oa, k) || oa[k] === undefined || typeof oa[k] === 'function') continue;
      na++;
      if (!Object.hasOwn(ob, k) || !jsonEqual(oa[k], ob[k])) return false;
    }
    let nb = 0;
    for (const k in ob) if (Object.hasOwn(ob, k) && ob[k] !== undefined && typeof ob[k] !== 'function') nb++;
    return na === nb;
  }
  return a === b;
}

/** JSON kind of a value; 'other' for anything whose JSON form needs the serializer (toJSON, Map...). */
function jsonType(v: unknown): 'null' | 'string' | 'number' | 'boolean' | 'array' | 'object' | 'undefined' | 'other' {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string': return 'string';
    case 'boolean': return 'boolean';
    case 'number': return Number.isFinite(v) ? 'number' : 'null';
    case 'undefined': return 'undefined';
    case 'object': {
      if (Array.isArray(v)) return 'array';
      const proto = Object.getPrototypeOf(v) as unknown;
      return (proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function' ? 'object' : 'other';
    }
    default: return 'other';
  }
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
