import type { EdgeApp, Instance } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import type { StreamKind } from '../../shared/protocol/streams.js';
import type { ObjectCache } from '../cache/object-cache.js';

/** App annotation listing the stream kinds operators may open to its instances ("logs,exec", "none"); absent = all. */
export const TUNNEL_ANNOTATION = 'outpost.dev/tunnel';

export interface TargetQuery {
  kind: StreamKind;
  app?: string;
  instance?: string;
  unit?: string;
  node?: string;
}

export interface ResolvedTarget {
  app: string;
  instance: string;
  node: string;
  unit: string;
}

/** The instances of an app, optionally of one unit or node, Running and ready ones first, then by name. */
export function appInstances(cache: ObjectCache, q: { app: string; unit?: string; node?: string }): Instance[] {
  const rank = (i: Instance) => (i.status?.phase === 'Running' ? (i.status.ready ? 0 : 1) : 2);
  return (cache.list('Instance') as Instance[])
    .filter((i) => i.spec.app === q.app && (!q.unit || i.spec.unit === q.unit) && (!q.node || i.spec.node === q.node))
    .sort((a, b) => rank(a) - rank(b) || a.metadata.name.localeCompare(b.metadata.name));
}

/**
 * Resolves `instance=` or `app=` (+ unit, node) to the one instance and node a stream goes to, and
 * checks the app allows the kind. Errors: NOT_FOUND (naming what), FORBIDDEN, UNAVAILABLE (not placed).
 */
export function resolveTarget(cache: ObjectCache, q: TargetQuery): ResolvedTarget {
  let instance: Instance | undefined;
  if (q.instance) {
    instance = cache.get('Instance', q.instance) as Instance | undefined;
    if (!instance) throw new OutpostError('NOT_FOUND', `instance ${q.instance} not found`);
    if (q.app && instance.spec.app !== q.app) throw new OutpostError('NOT_FOUND', `instance ${q.instance} is not an instance of app ${q.app}`);
  } else if (q.app) {
    if (!cache.get('EdgeApp', q.app)) throw new OutpostError('NOT_FOUND', `app ${q.app} not found`);
    instance = appInstances(cache, { app: q.app, ...(q.unit ? { unit: q.unit } : {}), ...(q.node ? { node: q.node } : {}) })[0];
    const where = [q.unit ? `unit ${q.unit}` : '', q.node ? `node ${q.node}` : ''].filter(Boolean).join(', ');
    if (!instance) throw new OutpostError('NOT_FOUND', `app ${q.app} has no instances${where ? ` on ${where}` : ''}`);
  } else {
    throw new OutpostError('BAD_REQUEST', 'name an app (app=) or an instance (instance=)');
  }
  authorize(cache, instance.spec.app, q.kind);
  if (!instance.spec.node) throw new OutpostError('UNAVAILABLE', `instance ${instance.metadata.name} is not placed on a node yet`);
  return { app: instance.spec.app, instance: instance.metadata.name, node: instance.spec.node, unit: instance.spec.unit };
}

/** Per-app authorization: the app's `outpost.dev/tunnel` annotation lists the kinds it allows. */
export function authorize(cache: ObjectCache, appName: string, kind: StreamKind): void {
  const app = cache.get('EdgeApp', appName) as EdgeApp | undefined;
  const allowed = app?.metadata.annotations?.[TUNNEL_ANNOTATION];
  if (allowed === undefined) return;
  const kinds = allowed.split(',').map((s) => s.trim()).filter(Boolean);
  // http is port-forward's HTTP form: one permission covers both.
  const ok = kinds.includes(kind) || (kind === 'http' && kinds.includes('port-forward'));
  if (!ok) throw new OutpostError('FORBIDDEN', `permission denied: app ${appName} allows only ${kinds.length && allowed !== 'none' ? kinds.join(', ') : 'no'} tunnel streams (annotation ${TUNNEL_ANNOTATION}), not ${kind}`);
}
