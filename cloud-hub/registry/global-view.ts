import type Database from 'better-sqlite3';
import { originDigests, type OriginDigest } from '../../shared/registry/digest.js';
import { supersedes, type RegistryRecord, type ServiceInstance } from '../../shared/registry/records.js';
import { openDatabase } from '../store/sqlite-schema.js';

/** One record as the hub holds it: the unit it belongs to, and when the hub stored its tombstone. */
interface Held {
  unit: string;
  record: RegistryRecord;
  /** Hub-local time the tombstone was stored (only for forgetting it; never for ordering). */
  tombstoneAt?: number;
}

export interface GlobalViewOptions {
  /** SQLite file of the view. */
  path: string;
  now?: () => number;
}

/** A live instance in the global view, with the version its origin gave it. */
export interface ViewInstance extends ServiceInstance {
  version: RegistryRecord['version'];
}

const fullKey = (unit: string, key: string) => `${unit}\u0000${key}`;

/**
 * The hub's view of every unit's registry: per (unit, record key) the newest record by the
 * `supersedes` rule, so merging is idempotent and order-free (a re-sent or older report changes
 * nothing). In memory for lookups, written through to its own SQLite file so a hub restart
 * keeps it. Record keys are unique within a unit only: two units may both have `web/1`.
 */
export class GlobalRegistryView {
  private readonly db: Database.Database;
  private readonly held = new Map<string, Held>();
  private readonly byService = new Map<string, Set<string>>();
  private readonly byUnit = new Map<string, Set<string>>();
  /** Digests per unit, computed on demand and dropped when the unit changes (a reconnect storm asks for each unit many times). */
  private readonly digestMemo = new Map<string, Record<string, OriginDigest>>();
  private readonly now: () => number;
  private readonly stmts;

  constructor(options: GlobalViewOptions) {
    this.now = options.now ?? Date.now;
    this.db = openDatabase(options.path);
    this.db.exec(`CREATE TABLE IF NOT EXISTS registry_records (unit TEXT NOT NULL, key TEXT NOT NULL, origin TEXT NOT NULL,
      record TEXT NOT NULL, tombstone_at INTEGER, PRIMARY KEY (unit, key))`);
    this.stmts = {
      upsert: this.db.prepare('INSERT INTO registry_records (unit, key, origin, record, tombstone_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (unit, key) DO UPDATE SET origin = excluded.origin, record = excluded.record, tombstone_at = excluded.tombstone_at'),
      remove: this.db.prepare('DELETE FROM registry_records WHERE unit = ? AND key = ?'),
      all: this.db.prepare<[], { unit: string; record: string; tombstone_at: number | null }>('SELECT unit, record, tombstone_at FROM registry_records'),
    };
    for (const row of this.stmts.all.iterate()) {
      const held: Held = { unit: row.unit, record: JSON.parse(row.record) as RegistryRecord, ...(row.tombstone_at === null ? {} : { tombstoneAt: row.tombstone_at }) };
      this.index(held);
    }
  }

  /** Merges records of one unit; returns those that changed the view. Durable when it returns. */
  merge(unit: string, records: readonly RegistryRecord[]): RegistryRecord[] {
    const changed: RegistryRecord[] = [];
    const now = this.now();
    this.db.transaction(() => {
      for (const record of records) {
        const k = fullKey(unit, record.key);
        const current = this.held.get(k);
        if (!supersedes(record, current?.record)) continue;
        const held: Held = { unit, record, ...(record.instance ? {} : { tombstoneAt: now }) };
        this.stmts.upsert.run(unit, record.key, record.origin, JSON.stringify(record), held.tombstoneAt ?? null);
        if (current) this.unindex(k, current);
        this.index(held);
        changed.push(record);
      }
    })();
    return changed;
  }

  /** Drops every record matching `drop` (a deleted node or unit, a node that moved). Returns how many. */
  removeWhere(drop: (unit: string, record: RegistryRecord) => boolean): number {
    const gone = [...this.held].filter(([, h]) => drop(h.unit, h.record));
    this.db.transaction(() => {
      for (const [k, h] of gone) {
        this.stmts.remove.run(h.unit, h.record.key);
        this.unindex(k, h);
      }
    })();
    return gone.length;
  }

  /** Forgets tombstones stored more than `olderThanMs` ago. Returns how many. */
  forgetTombstones(olderThanMs: number): number {
    const cutoff = this.now() - olderThanMs;
    return this.removeWhere((unit, r) => {
      if (r.instance) return false;
      const t = this.held.get(fullKey(unit, r.key))?.tombstoneAt;
      return t !== undefined && t < cutoff;
    });
  }

  /** Live instances of a service across units (every unit, or all but `exceptUnit`), unit then node order. */
  instances(service: string, filter: { unit?: string; exceptUnit?: string } = {}): ViewInstance[] {
    const out: ViewInstance[] = [];
    for (const k of this.byService.get(service) ?? []) {
      const h = this.held.get(k);
      if (!h?.record.instance) continue;
      if (filter.unit !== undefined && h.unit !== filter.unit) continue;
      if (filter.exceptUnit !== undefined && h.unit === filter.exceptUnit) continue;
      out.push({ ...h.record.instance, version: h.record.version });
    }
    // Code-unit order (not locale): every hub host lists alike.
    const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
    return out.sort((a, b) => cmp(a.unit, b.unit) || cmp(a.node, b.node) || cmp(a.id, b.id));
  }

  /** Every service with live instances: units, instance counts (healthy/total). */
  services(): { service: string; units: string[]; healthy: number; total: number }[] {
    const out: { service: string; units: string[]; healthy: number; total: number }[] = [];
    for (const service of [...this.byService.keys()].sort()) {
      const list = this.instances(service);
      if (list.length === 0) continue;
      out.push({ service, units: [...new Set(list.map((i) => i.unit))].sort(), healthy: list.filter((i) => i.health === 'passing').length, total: list.length });
    }
    return out;
  }

  /** Per-origin digests of a unit's live records (shared/registry/digest.ts). */
  digests(unit: string): Record<string, OriginDigest> {
    let d = this.digestMemo.get(unit);
    if (!d) {
      const records: RegistryRecord[] = [];
      for (const k of this.byUnit.get(unit) ?? []) {
        const h = this.held.get(k);
        if (h) records.push(h.record);
      }
      d = originDigests(records);
      this.digestMemo.set(unit, d);
    }
    return d;
  }

  /** Records held (live and tombstones). */
  size(): { records: number; instances: number; services: number } {
    let instances = 0;
    const services = new Set<string>();
    for (const h of this.held.values()) {
      if (!h.record.instance) continue;
      instances++;
      services.add(h.record.instance.service);
    }
    return { records: this.held.size, instances, services: services.size };
  }

  close(): void {
    this.db.close();
  }

  private index(h: Held): void {
    const k = fullKey(h.unit, h.record.key);
    this.held.set(k, h);
    this.digestMemo.delete(h.unit);
    let unitKeys = this.byUnit.get(h.unit);
    if (!unitKeys) this.byUnit.set(h.unit, (unitKeys = new Set()));
    unitKeys.add(k);
    const service = h.record.key.slice(0, h.record.key.indexOf('/'));
    let set = this.byService.get(service);
    if (!set) this.byService.set(service, (set = new Set()));
    set.add(k);
  }

  private unindex(k: string, h: Held): void {
    this.held.delete(k);
    this.digestMemo.delete(h.unit);
    const unitKeys = this.byUnit.get(h.unit);
    unitKeys?.delete(k);
    if (unitKeys?.size === 0) this.byUnit.delete(h.unit);
    const service = h.record.key.slice(0, h.record.key.indexOf('/'));
    const set = this.byService.get(service);
    set?.delete(k);
    if (set?.size === 0) this.byService.delete(service);
  }
}
