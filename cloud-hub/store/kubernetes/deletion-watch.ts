import type { AnyObject, KindName } from '../../../shared/api/index.js';
import type { Logger } from '../../../shared/logger.js';
import type { KubeHttp } from './kube-http.js';
import { fromCustomResource, resourcePath } from './object-mapping.js';

/** How long a delete waits for its DELETED event, in ms. */
const DELETION_EVENT_TIMEOUT_MS = 10_000;

/** A watch on one object, opened before it is deleted. */
export interface DeletionWatch {
  /** The object at its deletion revision, or undefined when the event did not come within 10 s. */
  result(): Promise<AnyObject | undefined>;
  cancel(): void;
}

/**
 * Opens a watch on `kind/name` from `resourceVersion` and resolves once the API server answered,
 * so that the DELETED event of a delete sent afterwards cannot be missed. If the watch cannot be
 * opened, result() resolves undefined and the caller falls back to the current revision.
 */
export async function awaitDeletion(deps: { http: KubeHttp; log?: Logger | undefined }, kind: KindName, name: string, resourceVersion: string): Promise<DeletionWatch> {
  const controller = new AbortController();
  let resolve!: (obj: AnyObject | undefined) => void;
  const done = new Promise<AnyObject | undefined>((r) => { resolve = r; });
  const path = resourcePath(kind, undefined, { query: { watch: 1, fieldSelector: `metadata.name=${name}`, resourceVersion } });
  try {
    const refused = await deps.http.stream(path, controller.signal, (line) => {
      const { type, object } = (line ?? {}) as { type?: string; object?: unknown };
      if (type === 'DELETED') resolve(fromCustomResource(object));
    }, () => resolve(undefined));
    if (refused) {
      deps.log?.warn({ kind, name, status: refused.status }, 'store delete: cannot watch for the deletion revision');
      resolve(undefined);
    }
  } catch (err) {
    deps.log?.warn({ err, kind, name }, 'store delete: cannot watch for the deletion revision');
    resolve(undefined);
  }
  return {
    result: async () => {
      const timer = setTimeout(() => resolve(undefined), DELETION_EVENT_TIMEOUT_MS);
      try {
        return await done;
      } finally {
        clearTimeout(timer);
        controller.abort();
      }
    },
    cancel: () => {
      resolve(undefined);
      controller.abort();
    },
  };
}
