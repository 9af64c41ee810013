import { createHash } from 'node:crypto';
import { compareVersions, type RegistryRecord } from '../records.js';
import type { OriginDigest } from './peer-frames.js';

const HASH_BYTES = 16;

function contribution(r: RegistryRecord): Buffer {
  return createHash('sha256').update(`${r.key}@${r.version.incarnation}.${r.version.counter}`).digest().subarray(0, HASH_BYTES);
}

function xorInto(acc: Buffer, h: Buffer): void {
  for (let i = 0; i < HASH_BYTES; i++) acc[i] = (acc[i] ?? 0) ^ (h[i] ?? 0);
}

/**
 * Per-origin digests kept up to date record by record: highest incarnation held, live records,
 * and the XOR of a hash of each live record's key and version (order-free, so one change costs one
 * hash, not a pass over the origin's records). Tombstones are left out of the hash: a replica that
 * still holds a tombstone its origin has collected is in step with it. A replica that missed a
 * deletion holds a live record the origin does not, so its hash differs and the exchange brings it
 * the tombstone.
 */
export class DigestIndex {
  private readonly byKey = new Map<string, { origin: string; h: Buffer }>();
  private readonly origins = new Map<string, { incarnation: number; live: number; acc: Buffer }>();

  constructor(records: Iterable<RegistryRecord> = []) {
    for (const r of records) this.update(r);
  }

  /** Applies the current state of one key (live or tombstone). */
  update(r: RegistryRecord): void {
    const held = this.byKey.get(r.key);
    if (held) {
      const o = this.origins.get(held.origin);
      if (o) {
        xorInto(o.acc, held.h);
        o.live--;
      }
      this.byKey.delete(r.key);
    }
    let o = this.origins.get(r.origin);
    if (!o) this.origins.set(r.origin, (o = { incarnation: 0, live: 0, acc: Buffer.alloc(HASH_BYTES) }));
    o.incarnation = Math.max(o.incarnation, r.version.incarnation);
    if (!r.instance) return;
    const h = contribution(r);
    xorInto(o.acc, h);
    o.live++;
    this.byKey.set(r.key, { origin: r.origin, h });
  }

  get(origin: string): OriginDigest | undefined {
    const o = this.origins.get(origin);
    return o && { origin, incarnation: o.incarnation, live: o.live, hash: o.acc.toString('hex') };
  }

  all(): Map<string, OriginDigest> {
    return new Map([...this.origins.keys()].map((origin) => [origin, this.get(origin) as OriginDigest]));
  }
}

/** Digests of every origin held, from all records. */
export function digestAll(records: Iterable<RegistryRecord>): Map<string, OriginDigest> {
  return new DigestIndex(records).all();
}

/** The origins whose digests differ between ours and theirs (held by only one side included). */
export function differingOrigins(ours: ReadonlyMap<string, OriginDigest>, theirs: readonly OriginDigest[]): { weSend: string[]; weWant: string[] } {
  const theirMap = new Map(theirs.map((d) => [d.origin, d]));
  const weSend: string[] = [];
  const weWant: string[] = [];
  for (const [origin, d] of ours) {
    const t = theirMap.get(origin);
    if (!t) {
      if (d.live > 0) weSend.push(origin);
    } else if (t.hash !== d.hash || t.live !== d.live) {
      weSend.push(origin);
      weWant.push(origin);
    }
  }
  for (const t of theirs) if (!ours.has(t.origin) && t.live > 0) weWant.push(t.origin);
  return { weSend, weWant };
}

/**
 * Tombstones retiring the records of `origin` from incarnations older than `incarnation` that are
 * not in the origin's complete current set (`keys`). The tombstone is versioned (incarnation, 0):
 * newer than anything of the older incarnations, older than any change the origin makes now.
 */
export function staleIncarnationTombstones(held: readonly RegistryRecord[], origin: string, incarnation: number, keys: ReadonlySet<string>): RegistryRecord[] {
  const out: RegistryRecord[] = [];
  const floor = { incarnation, counter: 0 };
  for (const r of held) {
    if (r.origin !== origin || !r.instance || keys.has(r.key)) continue;
    if (compareVersions(r.version, floor) < 0) out.push({ key: r.key, origin, version: floor });
  }
  return out;
}
