import type { AnyObject, KindName } from '../../shared/api/index.js';
import { KINDS } from '../../shared/api/index.js';
import type { Logger } from '../../shared/logger.js';
import type { Store, WatchEvent } from '../store/store.js';

/** A store change with the object's previous state, as an informer delivers it. */
export interface CacheEvent extends WatchEvent {
  oldObject: AnyObject | undefined;
}

export type CacheListener = (event: CacheEvent) => void;

/**
 * The hub's in-memory view of every object, fed by one store watch (an informer). Sessions,
 * scheduler and health read it synchronously; because it is updated on the event loop in
 * revision order, a snapshot read here followed by listening is gap-free.
 */
export class ObjectCache {
  private readonly objects = new Map<KindName, Map<string, AnyObject>>(KINDS.map((k) => [k.kind, new Map()]));
  private readonly listeners = new Set<CacheListener>();
  private watcher: { stop(): void } | undefined;
  private rev = 0;

  constructor(private readonly deps: { store: Store; log: Logger }) {}

  async start(): Promise<void> {
    let revision = 0;
    for (const k of KINDS) {
      const result = await this.deps.store.list(k.kind);
      // Lists of different kinds may be at different revisions; watching from the lowest one and
      // skipping events the cache already holds makes the union consistent.
      revision = revision === 0 ? result.revision : Math.min(revision, result.revision);
      const map = this.objects.get(k.kind);
      for (const o of result.items) map?.set(o.metadata.name, o);
    }
    this.rev = revision;
    this.watcher = await this.deps.store.watch({ fromRevision: revision }, (e) => this.apply(e));
  }

  async stop(): Promise<void> {
    this.watcher?.stop();
    this.watcher = undefined;
  }

  /** The revision the cache reflects. */
  get revision(): number {
    return this.rev;
  }

  get(kind: KindName, name: string): AnyObject | undefined {
    return this.objects.get(kind)?.get(name);
  }

  list(kind: KindName): AnyObject[] {
    return [...(this.objects.get(kind)?.values() ?? [])];
  }

  onChange(listener: CacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private apply(event: WatchEvent): void {
    const kind = event.object.kind as KindName;
    const map = this.objects.get(kind);
    if (!map) return;
    const name = event.object.metadata.name;
    const old = map.get(name);
    if (old && Number(old.metadata.resourceVersion) >= event.revision) return; // already seen via list
    if (event.type === 'DELETED') {
      if (!old) return;
      map.delete(name);
    } else {
      map.set(name, event.object);
    }
    this.rev = Math.max(this.rev, event.revision);
    const cacheEvent: CacheEvent = { ...event, oldObject: old };
    for (const l of this.listeners) {
      try {
        l(cacheEvent);
      } catch (err) {
        this.deps.log.error({ err, kind, name }, 'cache listener failed');
      }
    }
  }
}
