import { KINDS, validateObject, type AnyObject, type KindName } from '../../../shared/api/index.js';
import { systemClock, type Clock } from '../../../shared/clock.js';
import { OutpostError } from '../../../shared/errors.js';
import { deepEqual } from '../../../shared/hash.js';
import type { Logger } from '../../../shared/logger.js';
import type { KubeContext } from '../../kube/kube-context.js';
import type { ListOptions, ListResult, Store, WatchEvent, WatchOptions, WriteOptions } from '../store.js';
import { awaitDeletion } from './deletion-watch.js';
import { kubeError } from './kube-errors.js';
import { KubeHttp, type KubeHttpOptions, type KubeResponse } from './kube-http.js';
import { listAll } from './list-all.js';
import { API_GROUP_VERSION, crdName, fromCustomResource, labelSelectorString, resourcePath, toCustomResource } from './object-mapping.js';
import { fieldValue } from '../list-filter.js';
import { withRetry, type RetryOptions } from './retry.js';
import { startStoreWatch, type StoreWatchTuning } from './store-watch.js';

/** Options of {@link KubernetesStore.open}. */
export interface KubernetesStoreOptions {
  kube: KubeContext;
  log?: Logger;
  clock?: Clock;
  /** Retries of 429/5xx/network failures before UNAVAILABLE; default 5 tries, 100-2000 ms backoff. */
  retry?: RetryOptions;
  http?: KubeHttpOptions;
  watch?: StoreWatchTuning;
}

/** Read-modify-write rounds when another writer changes the object in between (no caller precondition). */
const MAX_WRITE_ROUNDS = 5;
/** Status replacements of one updateStatuses call in flight at once. */
const STATUS_CONCURRENCY = 16;

/**
 * The hub's store on a Kubernetes API server: each kind is a cluster-scoped custom resource
 * (deploy/crds), revisions are etcd's (resourceVersion as a number: one counter for the whole
 * cluster, so other clients' writes, Leases included, advance it too). Objects are validated with
 * the hub's own schemas before any write, status goes through the status subresource, and the API
 * server assigns uid, creationTimestamp and generation (bumped on spec changes only).
 */
export class KubernetesStore implements Store {
  private closed = false;
  private readonly watches = new Set<{ stop(): void }>();

  private constructor(private readonly http: KubeHttp, private readonly options: KubernetesStoreOptions) {}

  /** Connects and checks that every CRD is installed and served with its status subresource. */
  static async open(options: KubernetesStoreOptions): Promise<KubernetesStore> {
    const http = await KubeHttp.create(options.kube.kc, options.http);
    try {
      await checkCrds(http, options.retry);
      return new KubernetesStore(http, options);
    } catch (err) {
      http.close();
      throw err;
    }
  }

  async get(kind: KindName, name: string): Promise<AnyObject | undefined> {
    this.assertOpen();
    const res = await this.call(`get ${kind} "${name}"`, 'GET', resourcePath(kind, name));
    if (res.status === 404) return undefined;
    return this.ok(res, `${kind} "${name}"`, 200);
  }

  async list(kind: KindName, options: ListOptions = {}): Promise<ListResult> {
    this.assertOpen();
    const labelSelector = options.labelSelector?.length ? labelSelectorString(options.labelSelector) : undefined;
    const { items, revision } = await listAll({ http: this.http, retry: this.options.retry }, kind, { labelSelector });
    // Custom resources support field selectors on metadata only: spec paths are matched here.
    const fields = Object.entries(options.fieldSelector ?? {});
    const kept = items.filter((o) => fields.every(([path, want]) => fieldValue(o, path) === want));
    kept.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    return { items: kept, revision };
  }

  async create(object: AnyObject): Promise<AnyObject> {
    this.assertOpen();
    const input = validateObject(object);
    const kind = input.kind as KindName;
    const what = `${kind} "${input.metadata.name}"`;
    const { status, ...withoutStatus } = input;
    const res = await this.call(`create ${what}`, 'POST', resourcePath(kind), toCustomResource(withoutStatus as AnyObject));
    const created = this.ok(res, what, 201, 200);
    if (status === undefined) return created;
    // The status subresource ignores status on create: the hub's status is a second write.
    try {
      return await this.writeStatus(kind, input.metadata.name, status, []);
    } catch (err) {
      const e = err instanceof OutpostError ? err : new OutpostError('UNAVAILABLE', String(err));
      throw new OutpostError('UNAVAILABLE', `${what} was created (resourceVersion ${String(created.metadata.resourceVersion)}) but its status was not written: ${e.message}; update its status again`, { cause: err });
    }
  }

  async update(object: AnyObject, options: WriteOptions = {}): Promise<AnyObject> {
    this.assertOpen();
    const input = validateObject(object);
    const kind = input.kind as KindName;
    const name = input.metadata.name;
    const what = `${kind} "${name}"`;
    const preconditions = [options.resourceVersion, input.metadata.resourceVersion];
    for (let round = 1; ; round++) {
      const current = await this.current(kind, name, preconditions);
      const same = deepEqual(input.spec, current.spec)
        && deepEqual(input.metadata.labels ?? {}, current.metadata.labels ?? {})
        && deepEqual(input.metadata.annotations ?? {}, current.metadata.annotations ?? {});
      if (same) return current;
      const { status: _ignored, ...rest } = input;
      const res = await this.call(`update ${what}`, 'PUT', resourcePath(kind, name), toCustomResource(rest as AnyObject, current.metadata.resourceVersion));
      if (!this.retryConflict(res, preconditions, round)) return this.ok(res, what, 200);
    }
  }

  async updateStatus(kind: KindName, name: string, status: unknown, options: WriteOptions = {}): Promise<AnyObject> {
    this.assertOpen();
    return this.writeStatus(kind, name, status, [options.resourceVersion]);
  }

  /** Status replacements of one kind, a few at a time; each succeeds or fails alone. */
  async updateStatuses(kind: KindName, items: { name: string; status: unknown }[]): Promise<(AnyObject | Error)[]> {
    this.assertOpen();
    const results: (AnyObject | Error)[] = new Array<AnyObject | Error>(items.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < items.length; i = next++) {
        const item = items[i]!;
        try {
          results[i] = await this.writeStatus(kind, item.name, item.status, []);
        } catch (err) {
          results[i] = err instanceof Error ? err : new Error(String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(STATUS_CONCURRENCY, items.length) }, worker));
    return results;
  }

  async delete(kind: KindName, name: string, options: WriteOptions = {}): Promise<AnyObject> {
    this.assertOpen();
    const what = `${kind} "${name}"`;
    const preconditions = [options.resourceVersion];
    for (let round = 1; ; round++) {
      const current = await this.current(kind, name, preconditions);
      const rv = current.metadata.resourceVersion!;
      // The API server answers a custom resource's DELETE with a Status, not the object at its
      // deletion revision: a watch on this one object, opened first, reports that revision.
      const deletion = await awaitDeletion({ http: this.http, log: this.options.log }, kind, name, rv);
      try {
        const res = await this.call(`delete ${what}`, 'DELETE', resourcePath(kind, name), {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          preconditions: { resourceVersion: rv, ...(current.metadata.uid !== undefined && { uid: current.metadata.uid }) },
        });
        if (this.retryConflict(res, preconditions, round)) continue;
        this.ok(res, what, 200, 202);
        const gone = await deletion.result();
        return gone ?? { ...current, metadata: { ...current.metadata, resourceVersion: String(await this.currentRevision()) } };
      } finally {
        deletion.cancel();
      }
    }
  }

  async watch(options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<{ stop(): void }> {
    this.assertOpen();
    const handle = await startStoreWatch(
      { http: this.http, clock: this.options.clock ?? systemClock, log: this.options.log, retry: this.options.retry, currentRevision: () => this.currentRevision() },
      this.options.watch ?? {},
      options,
      onEvent,
    );
    const tracked = {
      stop: () => {
        this.watches.delete(tracked);
        handle.stop();
      },
    };
    this.watches.add(tracked);
    return tracked;
  }

  /** The newest revision: a one-item list's resourceVersion (read from etcd, consistent). */
  async currentRevision(): Promise<number> {
    this.assertOpen();
    const res = await this.call('read the current revision', 'GET', resourcePath(KINDS[0]!.kind, undefined, { query: { limit: 1 } }));
    const body = this.okBody(res, 'read the current revision', 200) as { metadata?: { resourceVersion?: string } };
    const rev = Number(body.metadata?.resourceVersion);
    if (!Number.isSafeInteger(rev)) throw new OutpostError('UNAVAILABLE', `the API server's list has no numeric resourceVersion (${String(body.metadata?.resourceVersion)})`);
    return rev;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.stop();
    this.http.close();
  }

  private async writeStatus(kind: KindName, name: string, status: unknown, preconditions: (string | undefined)[]): Promise<AnyObject> {
    const what = `${kind} "${name}"`;
    for (let round = 1; ; round++) {
      const current = await this.current(kind, name, preconditions);
      if (deepEqual(status, current.status)) return current;
      const { status: _old, ...rest } = current;
      const next = status === undefined ? rest : { ...rest, status };
      // Validate the object as it would be stored, so the store never holds an invalid status.
      validateObject(next);
      const res = await this.call(`update status of ${what}`, 'PUT', resourcePath(kind, name, { status: true }), toCustomResource(next as AnyObject, current.metadata.resourceVersion));
      if (!this.retryConflict(res, preconditions, round)) return this.ok(res, what, 200);
    }
  }

  /** The stored object, or NOT_FOUND; CONFLICT unless every given precondition matches it. */
  private async current(kind: KindName, name: string, preconditions: (string | undefined)[]): Promise<AnyObject> {
    const current = await this.get(kind, name);
    if (!current) throw new OutpostError('NOT_FOUND', `${kind} "${name}" not found`);
    const stored = current.metadata.resourceVersion;
    for (const want of preconditions) {
      if (want !== undefined && want !== stored) {
        throw new OutpostError('CONFLICT', `${kind} "${name}" was modified: resourceVersion is ${String(stored)}, not ${want}; get it again and retry`);
      }
    }
    return current;
  }

  /**
   * A 409 on a write that used the resourceVersion just read: someone else wrote in between. With
   * a caller's precondition that is the caller's CONFLICT; without one, read again and retry.
   */
  private retryConflict(res: KubeResponse, preconditions: (string | undefined)[], round: number): boolean {
    if (res.status !== 409 || preconditions.some((p) => p !== undefined)) return false;
    if (round >= MAX_WRITE_ROUNDS) return false;
    return true;
  }

  private call(what: string, method: string, path: string, body?: unknown): Promise<KubeResponse> {
    return withRetry(what, () => this.http.request(method, path, body), this.options.retry);
  }

  private okBody(res: KubeResponse, what: string, ...expected: number[]): unknown {
    if (!expected.includes(res.status)) throw kubeError(res, what);
    return res.body;
  }

  private ok(res: KubeResponse, what: string, ...expected: number[]): AnyObject {
    return fromCustomResource(this.okBody(res, what, ...expected));
  }

  private assertOpen(): void {
    if (this.closed) throw new OutpostError('UNAVAILABLE', 'store is closed');
  }
}

/** Refuses to open unless every kind's CRD is served, with its status subresource. */
async function checkCrds(http: KubeHttp, retry: RetryOptions | undefined): Promise<void> {
  const res = await withRetry(`read API group ${API_GROUP_VERSION}`, () => http.request('GET', `/apis/${API_GROUP_VERSION}`), retry);
  const install = 'install them with `kubectl apply -f deploy/crds/`';
  if (res.status === 404) {
    throw new OutpostError('UNAVAILABLE', `Kubernetes store: the API server serves no ${API_GROUP_VERSION} resources (missing CRDs, e.g. ${crdName(KINDS[0]!.kind)}): ${install}`);
  }
  if (res.status !== 200) throw kubeError(res, `Kubernetes store: read API group ${API_GROUP_VERSION}`);
  const served = new Set(((res.body as { resources?: { name?: string }[] }).resources ?? []).map((r) => r.name));
  const missing = KINDS.filter((k) => !served.has(k.plural)).map((k) => crdName(k.kind));
  if (missing.length > 0) throw new OutpostError('UNAVAILABLE', `Kubernetes store: missing CRD${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: ${install}`);
  const noStatus = KINDS.filter((k) => !served.has(`${k.plural}/status`)).map((k) => crdName(k.kind));
  if (noStatus.length > 0) throw new OutpostError('UNAVAILABLE', `Kubernetes store: CRD${noStatus.length > 1 ? 's' : ''} ${noStatus.join(', ')} lack the status subresource: ${install}`);
}
