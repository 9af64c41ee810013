import { createHash } from 'node:crypto';
import { compareVersions, type RegistryRecord } from '../records.js';
import type { OriginDigest } from './peer-frames.js';

/**
 * One origin's digest: highest incarnation held, live records and a hash of their keys and
 * versions. Tombstones are left out of the hash: a replica that still holds a tombstone its origin
 * has collected is in step with it. A replica that missed a deletion holds a live record the origin
 * does not, so its hash differs and the exchange brings it the tombstone.
 */
export function originDigest(origin: string, records: readonly RegistryRecord[]): OriginDigest {
  let incarnation = 0;
  const live: string[] = [];
  for (const r of records) {
    incarnation = Math.max(incarnation, r.version.incarnation);
    if (r.instance) live.push(`${r.key}@${r.version.incarnation}.${r.version.counter}`);
  }
  live.sort();
  const hash = createHash('sha256').update(live.join('\n')).digest('hex').slice(0, 32);
  return { origin, incarnation, live: live.length, hash };
}

/** Digests of every origin held, grouped from all records. */
export function digestAll(records: Iterable<RegistryRecord>): Map<string, OriginDigest> {
  const byOrigin = new Map<string, RegistryRecord[]>();
  for (const r of records) {
    let list = byOrigin.get(r.origin);
    if (!list) byOrigin.set(r.origin, (list = []));
    list.push(r);
  }
  return new Map([...byOrigin].map(([origin, list]) => [origin, originDigest(origin, list)]));
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
