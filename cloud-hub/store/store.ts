import type { AnyObject, KindName } from '../../shared/api/index.js';
import type { LabelRequirement } from '../../shared/labels.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change in the store. `revision` equals `object.metadata.resourceVersion` as a number. */
export interface WatchEvent {
  type: WatchEventType;
  object: AnyObject;
  revision: number;
}

export interface ListOptions {
  labelSelector?: LabelRequirement[];
  /** Exact matches on dotted paths, e.g. `{ 'spec.node': 'n1' }`. */
  fieldSelector?: Record<string, string>;
}

export interface ListResult {
  items: AnyObject[];
  /** The store revision the list is consistent with: watch from it to see every later change. */
  revision: number;
}

export interface WatchOptions {
  /** Kinds to watch; all kinds when omitted. */
  kinds?: KindName[];
  /**
   * Deliver every event with revision > fromRevision, in order, then live events.
   * Throws OutpostError REVISION_TOO_OLD (410) when the history no longer reaches back that far.
   */
  fromRevision: number;
  signal?: AbortSignal;
}

export interface WriteOptions {
  /** Optimistic concurrency: fail with CONFLICT unless the stored object has this resourceVersion. */
  resourceVersion?: string;
}

/**
 * The hub's object store. Revisions are one monotonically increasing counter over all kinds;
 * `metadata.resourceVersion` is that counter as a string (opaque to clients, as in Kubernetes).
 * Implementations: SQLite (embedded default); Kubernetes CRDs later. One contract suite
 * (test/contract/store.contract.ts) runs against each.
 *
 * Errors are OutpostError: NOT_FOUND, ALREADY_EXISTS, CONFLICT (stale resourceVersion),
 * REVISION_TOO_OLD (watch), INVALID (validation).
 */
export interface Store {
  get(kind: KindName, name: string): Promise<AnyObject | undefined>;
  list(kind: KindName, options?: ListOptions): Promise<ListResult>;
  /** Sets uid, creationTimestamp, generation 1, resourceVersion; ignores `status` unless given by the hub. */
  create(object: AnyObject): Promise<AnyObject>;
  /**
   * Replaces metadata.labels/annotations and spec (status is kept). Bumps generation when spec
   * changes. An update that changes nothing returns the stored object without a new revision.
   */
  update(object: AnyObject, options?: WriteOptions): Promise<AnyObject>;
  /** Replaces status only; spec and generation untouched. No new revision when unchanged. */
  updateStatus(kind: KindName, name: string, status: unknown, options?: WriteOptions): Promise<AnyObject>;
  /**
   * Optional: many status replacements in one write (SQLite: one transaction). Each item succeeds
   * or fails alone; `results[i]` is the stored object or the error that refused item i.
   */
  updateStatuses?(kind: KindName, items: { name: string; status: unknown }[]): Promise<(AnyObject | Error)[]>;
  delete(kind: KindName, name: string, options?: WriteOptions): Promise<AnyObject>;
  /** Subscribes to changes; `onEvent` is called in revision order. Call the returned stop(). */
  watch(options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<{ stop(): void }>;
  /** The newest revision. */
  currentRevision(): Promise<number>;
  close(): Promise<void>;
}
