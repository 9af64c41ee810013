import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_VERSION, validateObject, type AnyObject, type KindInfo } from '../../shared/api/index.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import { parseLabelSelector } from '../../shared/labels.js';
import type { Store, ListOptions } from '../store/store.js';
import { readObjectBody, sendJson } from './http.js';
import { streamWatch } from './watch.js';
import { redactSecrets, restoreRedactedSecrets } from '../configs/secret-redaction.js';
import type { ObjectCache } from '../cache/object-cache.js';
import { matchesListOptions } from '../store/list-filter.js';

export interface ResourceDeps {
  store: Store;
  /**
   * Reads (get, list) are answered from the hub's cache when given: no SQLite read and JSON
   * parse of every row per list (10 000 EdgeNodes), and only what is durable (the cache is fed
   * by the store's events, which follow the fsync). Without it, from the store.
   */
  cache?: ObjectCache;
  /** Called after an EdgeNode is deleted (revokes its credential, closes its session). */
  onNodeDeleted(name: string): void;
}

function parseFieldSelector(text: string | null): Record<string, string> | undefined {
  if (!text) return undefined;
  const out: Record<string, string> = {};
  for (const term of text.split(',')) {
    const m = /^\s*([A-Za-z0-9.]+)\s*==?\s*([^,]*)$/.exec(term);
    if (!m) throw new OutpostError('BAD_REQUEST', `field selector: cannot parse "${term}" (use path=value, e.g. spec.node=edge-1)`);
    out[m[1] ?? ''] = (m[2] ?? '').trim();
  }
  return out;
}

export function listOptions(query: URLSearchParams): ListOptions {
  const opts: ListOptions = {};
  const ls = query.get('labelSelector');
  if (ls) opts.labelSelector = parseLabelSelector(ls);
  const fs = parseFieldSelector(query.get('fieldSelector'));
  if (fs) opts.fieldSelector = fs;
  return opts;
}

/** `?showSecrets=true` (or 1): EdgeConfig secretData values in the answer instead of REDACTED. */
function showSecrets(query: URLSearchParams): boolean {
  const v = query.get('showSecrets');
  if (v === null || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new OutpostError('BAD_REQUEST', `showSecrets must be true or false, not "${v}"`);
}

/** Strips what clients may not set, and checks the object's kind and name against the path. */
function bodyObject(value: unknown, info: KindInfo, pathName?: string): AnyObject {
  const obj = validateObject(value);
  if (obj.kind !== info.kind) throw new OutpostError('BAD_REQUEST', `body is a ${obj.kind}, but the path is for ${info.plural}`);
  if (pathName !== undefined && obj.metadata.name !== pathName) {
    throw new OutpostError('BAD_REQUEST', `metadata.name "${obj.metadata.name}" does not match the name in the path "${pathName}"`);
  }
  const { status: _ignored, ...rest } = obj;
  return rest as AnyObject;
}

function requireWritable(info: KindInfo): void {
  if (!info.operatorWritable) throw new OutpostError('METHOD_NOT_ALLOWED', `${info.kind} objects are managed by the hub and cannot be written through the API`);
}

function getObject(deps: ResourceDeps, info: KindInfo, name: string): Promise<AnyObject | undefined> | AnyObject | undefined {
  return deps.cache ? deps.cache.get(info.kind, name) : deps.store.get(info.kind, name);
}

async function listObjects(deps: ResourceDeps, info: KindInfo, options: ListOptions): Promise<{ items: AnyObject[]; revision: number }> {
  if (!deps.cache) return deps.store.list(info.kind, options);
  // In name order, as the store lists (byte order: names are ASCII).
  const items = deps.cache.list(info.kind).filter((o) => matchesListOptions(o, options)).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  return { items, revision: deps.cache.revision };
}

/** `/apis/outpost.dev/v1alpha1/{plural}[/{name}[/status]]`. */
export async function handleResource(
  deps: ResourceDeps,
  req: IncomingMessage,
  res: ServerResponse,
  info: KindInfo,
  name: string | undefined,
  sub: string | undefined,
  query: URLSearchParams,
): Promise<void> {
  const { store } = deps;
  const method = req.method ?? 'GET';
  // Secret values leave the hub only on request (the admin token is checked before this point).
  const show = showSecrets(query);
  const present = <T extends AnyObject>(o: T): T => (show ? o : redactSecrets(o));
  if (sub !== undefined && sub !== 'status') throw new OutpostError('NOT_FOUND', `unknown subresource "${sub}"`);

  if (name === undefined) {
    if (method === 'GET' && (query.get('watch') === 'true' || query.get('watch') === '1')) {
      return streamWatch(store, req, res, info, query, present);
    }
    if (method === 'GET') {
      const list = await listObjects(deps, info, listOptions(query));
      return sendJson(res, 200, { apiVersion: API_VERSION, kind: `${info.kind}List`, metadata: { resourceVersion: String(list.revision) }, items: list.items.map(present) });
    }
    if (method === 'POST') {
      requireWritable(info);
      const obj = restoreRedactedSecrets(bodyObject(await readObjectBody(req), info), undefined);
      return sendJson(res, 201, present(await store.create(obj)));
    }
    throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed on a collection`);
  }

  const notFound = () => new OutpostError('NOT_FOUND', `${info.singular} "${name}" not found`);
  if (sub === 'status') {
    if (method === 'GET') {
      const obj = await getObject(deps, info, name);
      if (!obj) throw notFound();
      return sendJson(res, 200, present(obj));
    }
    if (method === 'PUT') {
      const body = validateObject(await readObjectBody(req));
      if (body.kind !== info.kind || body.metadata.name !== name) throw new OutpostError('BAD_REQUEST', 'body kind and name must match the path');
      const opts = body.metadata.resourceVersion ? { resourceVersion: body.metadata.resourceVersion } : {};
      return sendJson(res, 200, present(await store.updateStatus(info.kind, name, body.status ?? {}, opts)));
    }
    throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed on status`);
  }

  switch (method) {
    case 'GET': {
      const obj = await getObject(deps, info, name);
      if (!obj) throw notFound();
      return sendJson(res, 200, present(obj));
    }
    case 'PUT': {
      // Apply: create when absent, replace spec/labels/annotations when present. A resourceVersion
      // in the body is a precondition; without one the last writer wins.
      requireWritable(info);
      const body = await readObjectBody(req);
      // Without a resourceVersion the last writer wins: the update is made against the object as
      // read (redacted secrets are restored from it), and a hub write landing in between (status,
      // stamping: the store group-commits, so there is a tick between the read and the write) is
      // a reason to read again, not a conflict for the client. Bounded: 5 attempts.
      for (let attempt = 1; ; attempt++) {
        const existing = await store.get(info.kind, name);
        const obj = restoreRedactedSecrets(bodyObject(body, info, name), existing);
        if (!existing) {
          if (obj.metadata.resourceVersion) throw notFound();
          return sendJson(res, 201, present(await store.create(obj)));
        }
        const opts = obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {};
        try {
          const updated = await store.update({ ...obj, metadata: { ...obj.metadata, resourceVersion: obj.metadata.resourceVersion ?? existing.metadata.resourceVersion } } as AnyObject, opts);
          return sendJson(res, 200, present(updated));
        } catch (err) {
          if (obj.metadata.resourceVersion || attempt >= 5 || !isOutpostError(err, 'CONFLICT')) throw err;
        }
      }
    }
    case 'DELETE': {
      if (!info.operatorDeletable) throw new OutpostError('METHOD_NOT_ALLOWED', `${info.kind} objects are deleted by the hub, not through the API`);
      const rv = query.get('resourceVersion');
      const deleted = await store.delete(info.kind, name, rv ? { resourceVersion: rv } : {}).catch((err: unknown) => {
        throw err instanceof OutpostError && err.code === 'OUTPOST_NOT_FOUND' ? notFound() : err;
      });
      if (info.kind === 'EdgeNode') deps.onNodeDeleted(name);
      return sendJson(res, 200, present(deleted));
    }
    default:
      throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${info.plural}/${name}`);
  }
}
