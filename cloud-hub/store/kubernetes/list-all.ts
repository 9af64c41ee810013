import type { AnyObject, KindName } from '../../../shared/api/index.js';
import { isOutpostError } from '../../../shared/errors.js';
import { kubeError } from './kube-errors.js';
import type { KubeHttp } from './kube-http.js';
import { API_GROUP_VERSION, fromCustomResource, resourcePath } from './object-mapping.js';
import { withRetry, type RetryOptions } from './retry.js';

/** Options of {@link listAll}. */
export interface ListAllOptions {
  /** Kubernetes label selector syntax. */
  labelSelector?: string | undefined;
  /** The state at exactly this revision, from etcd's history: REVISION_TOO_OLD when compacted. */
  exactRevision?: number | undefined;
  /** Objects per request; default 500. */
  pageSize?: number | undefined;
  signal?: AbortSignal | undefined;
}

const MAX_PAGES = 100_000;
const MAX_RESTARTS = 3;

/**
 * Every object of a kind with the list's revision, page by page (continue tokens keep one
 * snapshot). Without `exactRevision` the list is consistent (the newest state). A continue token
 * that expired mid-list (compaction) restarts the list, at most 3 times.
 */
export async function listAll(deps: { http: KubeHttp; retry?: RetryOptions | undefined }, kind: KindName, options: ListAllOptions = {}): Promise<{ items: AnyObject[]; revision: number }> {
  for (let restart = 0; ; restart++) {
    try {
      return await listOnce(deps, kind, options);
    } catch (err) {
      const expiredToken = isOutpostError(err, 'REVISION_TOO_OLD') && (err.cause as { continued?: boolean } | undefined)?.continued === true;
      if (!expiredToken || options.exactRevision !== undefined || restart >= MAX_RESTARTS) throw err;
    }
  }
}

async function listOnce(deps: { http: KubeHttp; retry?: RetryOptions | undefined }, kind: KindName, options: ListAllOptions): Promise<{ items: AnyObject[]; revision: number }> {
  const items: AnyObject[] = [];
  let continueToken: string | undefined;
  let revision = 0;
  const what = `list ${kind}${options.exactRevision !== undefined ? ` at revision ${options.exactRevision}` : ''}`;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query: Record<string, string | number | undefined> = { limit: options.pageSize ?? 500, labelSelector: options.labelSelector || undefined };
    if (continueToken) query.continue = continueToken;
    else if (options.exactRevision !== undefined) {
      query.resourceVersion = String(options.exactRevision);
      query.resourceVersionMatch = 'Exact';
    }
    const path = resourcePath(kind, undefined, { query });
    const res = await withRetry(what, () => deps.http.request('GET', path, undefined, options.signal), { ...deps.retry, signal: options.signal });
    if (res.status !== 200) {
      const err = kubeError(res, what);
      if (continueToken) Object.defineProperty(err, 'cause', { value: { continued: true } });
      throw err;
    }
    const body = res.body as { items?: unknown[]; metadata?: { resourceVersion?: string; continue?: string } };
    if (page === 0) revision = Number(body.metadata?.resourceVersion ?? 0);
    // Items of a list carry no apiVersion/kind of their own in some API server versions.
    for (const raw of body.items ?? []) items.push(fromCustomResource({ apiVersion: API_GROUP_VERSION, kind, ...(raw as object) }));
    continueToken = body.metadata?.continue || undefined;
    if (!continueToken) return { items, revision };
  }
  throw new Error(`${what}: more than ${MAX_PAGES} pages`);
}
