import { randomBytes } from 'node:crypto';
import { API_VERSION, type AnyObject, type EdgeNode, type UnitPeers } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CacheEvent, ObjectCache } from '../cache/object-cache.js';
import { ControllerLoop } from '../controller-loop.js';
import type { Store } from '../store/store.js';

/** A new unit peer credential: 32 random bytes, base64url. */
export function newUnitCredential(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The UnitPeers object a unit should have: its member nodes that advertised a peer endpoint, the
 * unit credential (kept; rotated when a listed node left the unit, the old one then kept as
 * `previousCredential` until every listed node has applied the rotation), or undefined for a
 * unit where no member advertises a peer endpoint (nothing to replicate: no object is sent).
 */
export function desiredUnitPeers(members: readonly EdgeNode[], existing: UnitPeers | undefined, newSecret: () => string = newUnitCredential): UnitPeers['spec'] | undefined {
  const names = new Set(members.map((n) => n.metadata.name));
  const peers = members
    .filter((n) => n.status?.peerEndpoint)
    .map((n) => ({ node: n.metadata.name, endpoint: n.status?.peerEndpoint ?? '' }))
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  if (peers.length === 0) return undefined;
  if (!existing) return { peers, credential: newSecret() };
  const left = existing.spec.peers.some((p) => !names.has(p.node));
  if (left) return { peers, credential: newSecret(), previousCredential: existing.spec.credential };
  let previous = existing.spec.previousCredential;
  if (previous !== undefined) {
    // Every listed node has the current credential once it applied this object's revision.
    const rv = Number(existing.metadata.resourceVersion ?? Infinity);
    const applied = peers.every((p) => (members.find((n) => n.metadata.name === p.node)?.status?.appliedRevision ?? 0) >= rv);
    if (applied) previous = undefined;
  }
  return { peers, credential: existing.spec.credential, ...(previous !== undefined ? { previousCredential: previous } : {}) };
}

/** Keeps one UnitPeers object per unit with a member that advertises a peer endpoint. */
export class UnitPeersController {
  private readonly loop: ControllerLoop;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: { store: Store; cache: ObjectCache; log: Logger }) {
    this.loop = new ControllerLoop('unit peers', () => this.pass(), deps.log, { debounceMs: 200 });
  }

  start(): void {
    this.unsubscribe = this.deps.cache.onChange((e) => { if (this.relevant(e)) this.loop.trigger(); });
    this.loop.trigger();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.loop.stop();
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  private relevant(e: CacheEvent): boolean {
    if (e.object.kind === 'UnitPeers') return e.type === 'DELETED';
    if (e.object.kind !== 'EdgeNode') return false;
    if (e.type !== 'MODIFIED' || !e.oldObject) return true;
    const [a, b] = [e.oldObject as EdgeNode, e.object as EdgeNode];
    if (a.spec.unit !== b.spec.unit || a.status?.peerEndpoint !== b.status?.peerEndpoint) return true;
    // A pending rotation ends when the nodes have applied it.
    return a.status?.appliedRevision !== b.status?.appliedRevision && (this.deps.cache.get('UnitPeers', b.spec.unit) as UnitPeers | undefined)?.spec.previousCredential !== undefined;
  }

  private async pass(): Promise<void> {
    const { cache, store, log } = this.deps;
    const byUnit = new Map<string, EdgeNode[]>();
    for (const n of cache.list('EdgeNode') as EdgeNode[]) {
      let list = byUnit.get(n.spec.unit);
      if (!list) byUnit.set(n.spec.unit, (list = []));
      list.push(n);
    }
    const units = new Set([...byUnit.keys(), ...cache.list('UnitPeers').map((o) => o.metadata.name)]);
    for (const unit of units) {
      const existing = cache.get('UnitPeers', unit) as UnitPeers | undefined;
      const spec = desiredUnitPeers(byUnit.get(unit) ?? [], existing);
      try {
        if (!spec) {
          if (existing) await store.delete('UnitPeers', unit);
        } else if (!existing) {
          await store.create({ apiVersion: API_VERSION, kind: 'UnitPeers', metadata: { name: unit }, spec } as AnyObject);
        } else if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
          if (spec.credential !== existing.spec.credential) log.info({ unit }, 'a node left the unit: unit peer credential rotated');
          await store.update({ ...existing, spec } as AnyObject);
        }
      } catch (err) {
        // Raced with another write: the next pass sees the new state.
        if (!isOutpostError(err, 'CONFLICT') && !isOutpostError(err, 'ALREADY_EXISTS') && !isOutpostError(err, 'NOT_FOUND')) throw err;
        this.loop.requeue();
      }
    }
  }
}
