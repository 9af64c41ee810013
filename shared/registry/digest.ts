import { createHash } from 'node:crypto';
import type { RegistryRecord } from './records.js';

/** The digest of one origin's live records: how many, and a hash of their keys and versions. */
export interface OriginDigest {
  count: number;
  hash: string;
}

/**
 * Per-origin digests of live records (tombstones left out: the hub forgets tombstones on its own
 * schedule, and a missing deletion shows up as a live key the other side lacks). An agent that
 * reconnects compares its digests with the hub's and re-reports only the origins that differ.
 */
export function originDigests(records: Iterable<RegistryRecord>): Record<string, OriginDigest> {
  const lines = new Map<string, string[]>();
  for (const r of records) {
    if (!r.instance) continue;
    let list = lines.get(r.origin);
    if (!list) lines.set(r.origin, (list = []));
    list.push(`${r.key}@${r.version.incarnation}.${r.version.counter}`);
  }
  const out: Record<string, OriginDigest> = {};
  for (const [origin, list] of lines) {
    list.sort();
    out[origin] = { count: list.length, hash: createHash('sha256').update(list.join('\n')).digest('hex').slice(0, 32) };
  }
  return out;
}
