import type Database from 'better-sqlite3';
import type { AnyObject, Instance } from '../../shared/api/index.js';
import { objectDigest } from '../../shared/hash.js';
import type { CachedKey, SyncFrame } from '../../shared/protocol/frames.js';

/**
 * How objects are stored: the agent seals EdgeConfig secrets (edge-agent/configs/secret-codec.ts)
 * so that no secret plaintext reaches the SQLite file. Digests are of the plain object, as the
 * hub computes them; `openDigest` answers '' for a row it cannot vouch for, so the hub resends it.
 */
export interface CacheCodec {
  seal(obj: AnyObject): AnyObject;
  /** Throws an Error naming the object when it cannot be opened. */
  open(obj: AnyObject): AnyObject;
  sealDigest(kind: string, name: string, digest: string): string;
  openDigest(kind: string, name: string, stored: string): string;
}

const plainCodec: CacheCodec = { seal: (o) => o, open: (o) => o, sealDigest: (_k, _n, d) => d, openDigest: (_k, _n, d) => d };

/**
 * The agent's copy of its desired set and the revision it has applied. A sync batch is committed
 * in one transaction before it is acknowledged; applying the same batch twice changes nothing.
 */
export class DesiredCache {
  private readonly stmts;

  constructor(private readonly db: Database.Database, private readonly codec: CacheCodec = plainCodec) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS desired_objects (kind TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL,
        json TEXT NOT NULL, PRIMARY KEY (kind, name));
      CREATE TABLE IF NOT EXISTS agent_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    this.stmts = {
      upsert: db.prepare('INSERT INTO desired_objects (kind, name, digest, json) VALUES (?, ?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET digest = excluded.digest, json = excluded.json'),
      delete: db.prepare('DELETE FROM desired_objects WHERE kind = ? AND name = ?'),
      keys: db.prepare<[], { kind: string; name: string; digest: string }>('SELECT kind, name, digest FROM desired_objects'),
      has: db.prepare<[string, string], { one: number }>('SELECT 1 AS one FROM desired_objects WHERE kind = ? AND name = ?'),
      one: db.prepare<[string, string], { json: string }>('SELECT json FROM desired_objects WHERE kind = ? AND name = ?'),
      byKind: db.prepare<[string], { json: string }>('SELECT json FROM desired_objects WHERE kind = ? ORDER BY name'),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM agent_meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO agent_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  appliedRevision(): number {
    return Number(this.stmts.getMeta.get('applied_revision')?.value ?? 0);
  }

  cachedKeys(): CachedKey[] {
    return this.stmts.keys.all().map((r) => ({ kind: r.kind, name: r.name, digest: this.codec.openDigest(r.kind, r.name, r.digest) }));
  }

  list<T extends AnyObject>(kind: string): T[] {
    return this.stmts.byKind.all(kind).map((r) => this.codec.open(JSON.parse(r.json) as AnyObject) as T);
  }

  get<T extends AnyObject>(kind: string, name: string): T | undefined {
    const row = this.stmts.one.get(kind, name);
    return row ? (this.codec.open(JSON.parse(row.json) as AnyObject) as T) : undefined;
  }

  has(kind: string, name: string): boolean {
    return this.stmts.has.get(kind, name) !== undefined;
  }

  instances(): Instance[] {
    return this.list<Instance>('Instance');
  }

  /** Commits one sync batch atomically. */
  apply(frame: SyncFrame): void {
    this.db.transaction(() => {
      for (const o of frame.objects) this.stmts.upsert.run(o.kind, o.metadata.name, this.codec.sealDigest(o.kind, o.metadata.name, objectDigest(o)), JSON.stringify(this.codec.seal(o)));
      for (const d of frame.deletes) this.stmts.delete.run(d.kind, d.name);
      if (frame.keys) {
        const keep = new Set(frame.keys.map((k) => `${k.kind}/${k.name}`));
        for (const k of this.stmts.keys.all()) if (!keep.has(`${k.kind}/${k.name}`)) this.stmts.delete.run(k.kind, k.name);
      }
      if (frame.revision > this.appliedRevision()) this.stmts.setMeta.run('applied_revision', String(frame.revision));
    })();
  }

  getMeta(key: string): string | undefined {
    return this.stmts.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }
}
