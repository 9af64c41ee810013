import { API_VERSION, kindInfo, type AnyObject, type KindName } from '../../../shared/api/index.js';
import type { LabelRequirement } from '../../../shared/labels.js';

/** The API group every Outpost kind is served under as a cluster-scoped CRD (deploy/crds). */
export const GROUP = 'outpost.dev';
export const VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${GROUP}/${VERSION}`;

/** `/apis/outpost.dev/v1alpha1/<plural>[/<name>[/status]]`, plus a query string. */
export function resourcePath(kind: KindName, name?: string, options: { status?: boolean; query?: Record<string, string | number | boolean | undefined> } = {}): string {
  let path = `/apis/${GROUP}/${VERSION}/${kindInfo(kind).plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (options.status) path += '/status';
  const query = Object.entries(options.query ?? {}).filter(([, v]) => v !== undefined);
  if (query.length > 0) path += `?${new URLSearchParams(query.map(([k, v]): [string, string] => [k, String(v)])).toString()}`;
  return path;
}

/** The CRD of a kind, as `kubectl apply -f deploy/crds/` installs it. */
export function crdName(kind: KindName): string {
  return `${kindInfo(kind).plural}.${GROUP}`;
}

/** The fields of Kubernetes' ObjectMeta the store reads. */
interface KubeMeta {
  name?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
}

/**
 * A custom resource as the hub sees it: the hub's object shape, with only the metadata fields
 * the hub knows (managedFields, finalizers and the like stay in Kubernetes). Deterministic, so
 * the object a write returns equals what a later get returns.
 */
export function fromCustomResource(cr: unknown): AnyObject {
  const o = cr as { apiVersion?: string; kind: string; metadata?: KubeMeta; spec?: unknown; status?: unknown };
  const m = o.metadata ?? {};
  return {
    apiVersion: o.apiVersion ?? API_VERSION,
    kind: o.kind,
    metadata: {
      name: m.name ?? '',
      ...(m.labels !== undefined && { labels: m.labels }),
      ...(m.annotations !== undefined && { annotations: m.annotations }),
      ...(m.uid !== undefined && { uid: m.uid }),
      ...(m.resourceVersion !== undefined && { resourceVersion: m.resourceVersion }),
      ...(m.generation !== undefined && { generation: m.generation }),
      ...(m.creationTimestamp !== undefined && { creationTimestamp: m.creationTimestamp }),
    },
    ...(o.spec !== undefined && { spec: o.spec }),
    ...(o.status !== undefined && { status: o.status }),
  } as AnyObject;
}

/** The body of a create or replace: the hub's fields, plus a resourceVersion precondition when given. */
export function toCustomResource(obj: AnyObject, resourceVersion?: string): Record<string, unknown> {
  const { labels, annotations } = obj.metadata;
  return {
    apiVersion: API_VERSION,
    kind: obj.kind,
    metadata: {
      name: obj.metadata.name,
      ...(labels !== undefined && { labels }),
      ...(annotations !== undefined && { annotations }),
      ...(resourceVersion !== undefined && { resourceVersion }),
    },
    ...('spec' in obj && obj.spec !== undefined && { spec: obj.spec }),
    ...(obj.status !== undefined && { status: obj.status }),
  };
}

/** The store revision of an object: its resourceVersion, which one etcd makes globally increasing. */
export function revisionOf(obj: { metadata: { resourceVersion?: string | undefined } }): number {
  const n = Number(obj.metadata.resourceVersion);
  return Number.isSafeInteger(n) ? n : 0;
}

/** A label selector in Kubernetes' syntax; same semantics as matchesRequirements (`!=` matches objects without the key). */
export function labelSelectorString(reqs: LabelRequirement[]): string {
  return reqs.map((r) => {
    switch (r.op) {
      case 'eq': return `${r.key}=${r.value}`;
      case 'neq': return `${r.key}!=${r.value}`;
      case 'exists': return r.key;
      case 'notexists': return `!${r.key}`;
    }
  }).join(',');
}

