import { createHash } from 'node:crypto';
import { CoreV1Api, makeInformer, type Informer, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { hashSecret, newId, newSecret, secretMatches, splitToken } from '../../shared/secrets.js';
import type { CreateTokenOptions, JoinTokenInfo, NodeIdentity } from '../auth/hub-secrets.js';
import type { HubSecretStore } from '../auth/secret-store.js';
import { kubeError } from './kube-api-errors.js';

const KIND_LABEL = 'outpost.dev/secret';
const CRED_ID_LABEL = 'outpost.dev/credential-id';
const MANAGED = { 'app.kubernetes.io/managed-by': 'outpost-hub' };
const TOKEN_KIND = 'join-token';
const CRED_KIND = 'node-credential';

interface CredEntry { hash: string; node: string; unit: string }

/**
 * Join tokens and node credentials as Kubernetes Secrets in the hub namespace, shared by every hub
 * replica (README "Kubernetes mode"). Only SHA-256 hashes are stored, never a secret. Labels
 * `outpost.dev/secret=join-token|node-credential` make them listable; a credential Secret is named
 * after a hash of the node name, so creating it is the atomic "one credential per node" check.
 * Credentials are authenticated from an index fed by a watch (informer) on those Secrets, so a
 * credential issued or revoked by another replica takes effect here as soon as the watch delivers
 * it; a replica's own writes go into the index at once.
 */
export class KubeSecrets implements HubSecretStore {
  private readonly api: CoreV1Api;
  private readonly byCredId = new Map<string, CredEntry>();
  private informer: Informer<V1Secret> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(private readonly deps: { kc: KubeConfig; namespace: string; log: Logger; now?: () => number }) {
    this.api = deps.kc.makeApiClient(CoreV1Api);
  }

  /** Lists the credential Secrets and starts watching them. Throws a clear error when the namespace or the RBAC grant is missing. */
  static async open(deps: { kube: { kc: KubeConfig; namespace: string }; log: Logger; now?: () => number }): Promise<KubeSecrets> {
    const s = new KubeSecrets({ kc: deps.kube.kc, namespace: deps.kube.namespace, log: deps.log, ...(deps.now ? { now: deps.now } : {}) });
    await s.startWatch();
    return s;
  }

  private get now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private get ns(): string {
    return this.deps.namespace;
  }

  private async startWatch(): Promise<void> {
    const selector = `${KIND_LABEL}=${CRED_KIND}`;
    const path = `/api/v1/namespaces/${this.ns}/secrets`;
    const informer = makeInformer<V1Secret>(this.deps.kc, path, () => this.api.listNamespacedSecret({ namespace: this.ns, labelSelector: selector }), selector);
    const put = (s: V1Secret) => {
      const e = credEntry(s);
      if (e) this.byCredId.set(e.id, e.entry);
    };
    informer.on('add', put);
    informer.on('update', put);
    informer.on('delete', (s) => {
      const id = s.metadata?.labels?.[CRED_ID_LABEL];
      if (id) this.byCredId.delete(id);
    });
    informer.on('error', (err: unknown) => {
      if (this.closed) return;
      this.deps.log.warn({ err: kubeError(err, 'watch of node credential Secrets') }, 'credential watch ended; restarting in 1 s');
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => { if (!this.closed) informer.start().catch(() => undefined); }, 1000);
      this.restartTimer.unref();
    });
    this.informer = informer;
    try {
      await informer.start();
    } catch (err) {
      await informer.stop().catch(() => undefined);
      throw new OutpostError('UNAVAILABLE', `cannot list node credential Secrets in namespace ${this.ns} (does it exist, and may the hub list secrets there?): ${kubeError(err, 'list secrets').message}`, { cause: err });
    }
  }

  async createJoinToken(options: CreateTokenOptions): Promise<{ token: string; info: JoinTokenInfo }> {
    const id = newId();
    const secret = newSecret();
    const created = this.now;
    const expires = options.ttlMs === null ? null : created + options.ttlMs;
    const labels = { ...options.labels };
    const info: JoinTokenInfo = { id, unit: options.unit, expiresAt: expires === null ? null : new Date(expires).toISOString(), usesLeft: options.uses, createdAt: new Date(created).toISOString(), description: options.description ?? '', labels };
    await this.call(this.api.createNamespacedSecret({ namespace: this.ns, body: this.tokenSecret(id, hashSecret(secret), info) }), 'create join token Secret');
    return { token: `${id}.${secret}`, info };
  }

  async listJoinTokens(): Promise<JoinTokenInfo[]> {
    const list = await this.call(this.api.listNamespacedSecret({ namespace: this.ns, labelSelector: `${KIND_LABEL}=${TOKEN_KIND}` }), 'list join token Secrets');
    return list.items.map((s) => tokenInfo(s)).filter((t): t is JoinTokenInfo => t !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async deleteJoinToken(id: string): Promise<boolean> {
    if (!/^[0-9a-f]{1,64}$/.test(id)) return false;
    try {
      await this.call(this.api.deleteNamespacedSecret({ name: tokenName(id), namespace: this.ns }), 'delete join token Secret');
      return true;
    } catch (err) {
      if (isOutpostError(err, 'NOT_FOUND')) return false;
      throw err;
    }
  }

  async checkJoinToken(token: string): Promise<{ id: string; unit: string; labels: Record<string, string> }> {
    const { info } = await this.readToken(token);
    return { id: info.id, unit: info.unit, labels: info.labels };
  }

  async joinNode(token: string, node: string): Promise<{ credential: string; unit: string }> {
    const { info } = await this.readToken(token);
    const credId = newId();
    const secret = newSecret();
    const entry: CredEntry = { hash: hashSecret(secret), node, unit: info.unit };
    const body: V1Secret = {
      metadata: { name: credName(node), namespace: this.ns, labels: { ...MANAGED, [KIND_LABEL]: CRED_KIND, [CRED_ID_LABEL]: credId } },
      type: 'outpost.dev/node-credential',
      stringData: { hash: entry.hash, node, unit: info.unit, createdAt: new Date(this.now).toISOString() },
    };
    try {
      await this.call(this.api.createNamespacedSecret({ namespace: this.ns, body }), 'create node credential Secret');
    } catch (err) {
      if (isOutpostError(err, 'ALREADY_EXISTS')) throw new OutpostError('NODE_EXISTS', `node "${node}" has already joined; to re-join it, first run \`outpost delete node ${node}\``);
      throw err;
    }
    // The credential exists; now consume one use. Losing that race (used up meanwhile) undoes it.
    try {
      await this.consumeUse(token);
    } catch (err) {
      await this.call(this.api.deleteNamespacedSecret({ name: credName(node), namespace: this.ns }), 'delete node credential Secret').catch(() => undefined);
      throw err;
    }
    this.byCredId.set(credId, entry);
    return { credential: `${credId}.${secret}`, unit: info.unit };
  }

  authenticateNode(credential: string): NodeIdentity | undefined {
    const parts = splitToken(credential);
    const e = parts ? this.byCredId.get(parts.id) : undefined;
    if (!parts || !e || !secretMatches(parts.secret, e.hash)) return undefined;
    return { node: e.node, unit: e.unit };
  }

  async hasNode(node: string): Promise<boolean> {
    try {
      await this.call(this.api.readNamespacedSecret({ name: credName(node), namespace: this.ns }), 'read node credential Secret');
      return true;
    } catch (err) {
      if (isOutpostError(err, 'NOT_FOUND')) return false;
      throw err;
    }
  }

  async revokeNode(node: string): Promise<void> {
    for (const [id, e] of this.byCredId) if (e.node === node) this.byCredId.delete(id);
    try {
      await this.call(this.api.deleteNamespacedSecret({ name: credName(node), namespace: this.ns }), 'delete node credential Secret');
    } catch (err) {
      if (!isOutpostError(err, 'NOT_FOUND')) throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    await this.informer?.stop().catch(() => undefined);
  }

  /** Reads and checks a join token: TOKEN_INVALID / TOKEN_EXPIRED / TOKEN_USED_UP. */
  private async readToken(token: string): Promise<{ info: JoinTokenInfo; secret: V1Secret }> {
    const parts = splitToken(token);
    const invalid = () => new OutpostError('TOKEN_INVALID', 'join token is not valid (unknown id or wrong secret)');
    if (!parts || !/^[0-9a-f]{1,64}$/.test(parts.id)) throw invalid();
    let secret: V1Secret;
    try {
      secret = await this.call(this.api.readNamespacedSecret({ name: tokenName(parts.id), namespace: this.ns }), 'read join token Secret');
    } catch (err) {
      if (isOutpostError(err, 'NOT_FOUND')) throw invalid();
      throw err;
    }
    const info = tokenInfo(secret);
    const hash = field(secret, 'hash');
    if (!info || !hash || !secretMatches(parts.secret, hash)) throw invalid();
    if (info.expiresAt !== null && Date.parse(info.expiresAt) <= this.now) {
      throw new OutpostError('TOKEN_EXPIRED', `join token ${info.id} expired at ${info.expiresAt}; create a new one with \`outpost token create --unit ${info.unit}\``);
    }
    if (info.usesLeft !== null && info.usesLeft <= 0) throw new OutpostError('TOKEN_USED_UP', `join token ${info.id} has no uses left`);
    return { info, secret };
  }

  /** One use less, with the Secret's resourceVersion as precondition; re-read and retry on a conflict. */
  private async consumeUse(token: string): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const { info, secret } = await this.readToken(token);
      if (info.usesLeft === null) return;
      const body: V1Secret = { ...secret, data: { ...secret.data, usesLeft: b64(String(info.usesLeft - 1)) } };
      try {
        await this.call(this.api.replaceNamespacedSecret({ name: tokenName(info.id), namespace: this.ns, body }), 'update join token Secret');
        return;
      } catch (err) {
        if (!isOutpostError(err, 'CONFLICT')) throw err;
      }
    }
    throw new OutpostError('UNAVAILABLE', 'join token is being used by many joins at once; try again');
  }

  private tokenSecret(id: string, hash: string, info: JoinTokenInfo): V1Secret {
    return {
      metadata: { name: tokenName(id), namespace: this.ns, labels: { ...MANAGED, [KIND_LABEL]: TOKEN_KIND } },
      type: 'outpost.dev/join-token',
      stringData: {
        hash, id, unit: info.unit, expiresAt: info.expiresAt ?? '', usesLeft: info.usesLeft === null ? '' : String(info.usesLeft),
        createdAt: info.createdAt, description: info.description, labels: JSON.stringify(info.labels),
      },
    };
  }

  private async call<T>(request: Promise<T>, what: string): Promise<T> {
    try {
      return await request;
    } catch (err) {
      throw kubeError(err, `${what} in namespace ${this.ns}`);
    }
  }
}

function tokenName(id: string): string {
  return `outpost-join-token-${id}`;
}

/** Node names are up to 253 characters; a Secret name must stay under 253, so it carries a hash. */
export function credName(node: string): string {
  return `outpost-node-${createHash('sha256').update(node).digest('hex').slice(0, 40)}`;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function field(s: V1Secret, key: string): string | undefined {
  const v = s.data?.[key];
  return v === undefined ? s.stringData?.[key] : Buffer.from(v, 'base64').toString('utf8');
}

function tokenInfo(s: V1Secret): JoinTokenInfo | undefined {
  const id = field(s, 'id');
  const unit = field(s, 'unit');
  const createdAt = field(s, 'createdAt');
  if (!id || !unit || !createdAt) return undefined;
  const uses = field(s, 'usesLeft');
  let labels: Record<string, string> = {};
  try {
    const v = JSON.parse(field(s, 'labels') ?? '{}') as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) labels = v as Record<string, string>;
  } catch {
    // keep none
  }
  return { id, unit, expiresAt: field(s, 'expiresAt') || null, usesLeft: uses ? Number(uses) : null, createdAt, description: field(s, 'description') ?? '', labels };
}

function credEntry(s: V1Secret): { id: string; entry: CredEntry } | undefined {
  const id = s.metadata?.labels?.[CRED_ID_LABEL];
  const hash = field(s, 'hash');
  const node = field(s, 'node');
  const unit = field(s, 'unit');
  if (!id || !hash || !node || !unit) return undefined;
  return { id, entry: { hash, node, unit } };
}
