import type Database from 'better-sqlite3';
import { openDatabase } from '../store/sqlite-schema.js';
import { WalSync } from '../store/wal-sync.js';
import { OutpostError } from '../../shared/errors.js';
import { hashSecret, newId, newSecret, secretMatches, splitToken } from '../../shared/secrets.js';

/** A join token as listed (never with its secret). */
export interface JoinTokenInfo {
  id: string;
  unit: string;
  expiresAt: string | null;
  usesLeft: number | null;
  createdAt: string;
  description: string;
  /** Labels every node joining with this token gets; the only node labels unit selectors match. */
  labels: Record<string, string>;
}

export interface NodeIdentity {
  node: string;
  unit: string;
}

export interface CreateTokenOptions {
  unit: string;
  /** Milliseconds until expiry; null for none. */
  ttlMs: number | null;
  /** Joins allowed; null for unlimited. */
  uses: number | null;
  description?: string;
  labels?: Record<string, string>;
}

/**
 * Join tokens and node credentials, kept in the hub's private SQLite file (never in the object
 * store, which operators can read). Only SHA-256 hashes of the secrets are stored.
 */
export class HubSecrets {
  private readonly db: Database.Database;
  private readonly stmts;
  /** Joins fsync the WAL off the event loop (one fsync for the joins of a moment, not one each); undefined in memory. */
  private readonly wal: WalSync | undefined;

  constructor(path: string, private readonly now: () => number = Date.now) {
    this.db = openDatabase(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS join_tokens (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL, unit TEXT NOT NULL, expires_at INTEGER,
        uses_left INTEGER, created_at INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '',
        labels TEXT NOT NULL DEFAULT '{}');
      CREATE TABLE IF NOT EXISTS node_credentials (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL, node TEXT NOT NULL UNIQUE, unit TEXT NOT NULL,
        created_at INTEGER NOT NULL);
    `);
    // hub.db files made before token labels existed.
    if (!this.db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('join_tokens')").all().some((c) => c.name === 'labels')) {
      this.db.exec("ALTER TABLE join_tokens ADD COLUMN labels TEXT NOT NULL DEFAULT '{}'");
    }
    this.stmts = {
      insertToken: this.db.prepare('INSERT INTO join_tokens (id, hash, unit, expires_at, uses_left, created_at, description, labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      getToken: this.db.prepare<[string], { id: string; hash: string; unit: string; expires_at: number | null; uses_left: number | null; labels: string }>('SELECT * FROM join_tokens WHERE id = ?'),
      useToken: this.db.prepare('UPDATE join_tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left IS NOT NULL'),
      listTokens: this.db.prepare<[], { id: string; unit: string; expires_at: number | null; uses_left: number | null; created_at: number; description: string; labels: string }>('SELECT id, unit, expires_at, uses_left, created_at, description, labels FROM join_tokens ORDER BY created_at'),
      deleteToken: this.db.prepare('DELETE FROM join_tokens WHERE id = ?'),
      insertCred: this.db.prepare('INSERT INTO node_credentials (id, hash, node, unit, created_at) VALUES (?, ?, ?, ?, ?)'),
      getCred: this.db.prepare<[string], { hash: string; node: string; unit: string }>('SELECT hash, node, unit FROM node_credentials WHERE id = ?'),
      credByNode: this.db.prepare<[string], { id: string }>('SELECT id FROM node_credentials WHERE node = ?'),
      deleteCredByNode: this.db.prepare('DELETE FROM node_credentials WHERE node = ?'),
    };
    if (path !== ':memory:' && path !== '' && this.db.pragma('journal_mode', { simple: true }) === 'wal') {
      // This connection commits without fsync; every write below fsyncs before it answers (see WalSync).
      this.db.pragma('synchronous = NORMAL');
      this.wal = new WalSync(path);
    }
  }

  createJoinToken(options: CreateTokenOptions): { token: string; info: JoinTokenInfo } {
    const id = newId();
    const secret = newSecret();
    const created = this.now();
    const expires = options.ttlMs === null ? null : created + options.ttlMs;
    const labels = { ...options.labels };
    this.stmts.insertToken.run(id, hashSecret(secret), options.unit, expires, options.uses, created, options.description ?? '', JSON.stringify(labels));
    this.wal?.syncNow();
    return {
      token: `${id}.${secret}`,
      info: { id, unit: options.unit, expiresAt: expires === null ? null : new Date(expires).toISOString(), usesLeft: options.uses, createdAt: new Date(created).toISOString(), description: options.description ?? '', labels },
    };
  }

  listJoinTokens(): JoinTokenInfo[] {
    return this.stmts.listTokens.all().map((r) => ({
      id: r.id, unit: r.unit, expiresAt: r.expires_at === null ? null : new Date(r.expires_at).toISOString(),
      usesLeft: r.uses_left, createdAt: new Date(r.created_at).toISOString(), description: r.description, labels: parseLabels(r.labels),
    }));
  }

  deleteJoinToken(id: string): boolean {
    const deleted = this.stmts.deleteToken.run(id).changes > 0;
    this.wal?.syncNow();
    return deleted;
  }

  /**
   * Checks a join token without consuming it. Throws TOKEN_INVALID / TOKEN_EXPIRED / TOKEN_USED_UP.
   * The caller consumes it with `joinNode` once the node is created.
   */
  checkJoinToken(token: string): { id: string; unit: string; labels: Record<string, string> } {
    const parts = splitToken(token);
    const row = parts ? this.stmts.getToken.get(parts.id) : undefined;
    if (!parts || !row || !secretMatches(parts.secret, row.hash)) throw new OutpostError('TOKEN_INVALID', 'join token is not valid (unknown id or wrong secret)');
    if (row.expires_at !== null && row.expires_at <= this.now()) {
      throw new OutpostError('TOKEN_EXPIRED', `join token ${row.id} expired at ${new Date(row.expires_at).toISOString()}; create a new one with \`outpost token create --unit ${row.unit}\``);
    }
    if (row.uses_left !== null && row.uses_left <= 0) throw new OutpostError('TOKEN_USED_UP', `join token ${row.id} has no uses left`);
    return { id: row.id, unit: row.unit, labels: parseLabels(row.labels) };
  }

  /**
   * Consumes one use of the token and issues the node's credential, atomically; resolves once
   * that is on disk. Joins arriving together share one fsync, made off the event loop.
   */
  async joinNode(token: string, node: string): Promise<{ credential: string; unit: string }> {
    const joined = this.db.transaction(() => {
      const { id, unit } = this.checkJoinToken(token);
      if (this.stmts.credByNode.get(node)) {
        throw new OutpostError('NODE_EXISTS', `node "${node}" has already joined; to re-join it, first run \`outpost delete node ${node}\``);
      }
      this.stmts.useToken.run(id);
      const credId = newId();
      const secret = newSecret();
      this.stmts.insertCred.run(credId, hashSecret(secret), node, unit, this.now());
      return { credential: `${credId}.${secret}`, unit };
    })();
    await this.wal?.sync();
    return joined;
  }

  /** The node a credential belongs to, or undefined. */
  authenticateNode(credential: string): NodeIdentity | undefined {
    const parts = splitToken(credential);
    const row = parts ? this.stmts.getCred.get(parts.id) : undefined;
    if (!parts || !row || !secretMatches(parts.secret, row.hash)) return undefined;
    return { node: row.node, unit: row.unit };
  }

  hasNode(node: string): boolean {
    return this.stmts.credByNode.get(node) !== undefined;
  }

  revokeNode(node: string): void {
    this.stmts.deleteCredByNode.run(node);
    this.wal?.syncNow();
  }

  close(): void {
    this.wal?.close();
    this.db.close();
  }
}

function parseLabels(text: string): Record<string, string> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}
