import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EdgeNode } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import type { ObjectCache } from '../cache/object-cache.js';
import { bearerToken, sendJson } from '../api/http.js';
import type { HubSecretStore } from '../auth/secret-store.js';
import type { GlobalRegistryView } from './global-view.js';
import type { RegistryMetrics } from './registry-metrics.js';

export interface RegistryApiDeps {
  view: GlobalRegistryView;
  cache: ObjectCache;
  secrets: HubSecretStore;
  metrics: RegistryMetrics;
}

const SERVICE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function checkService(name: string): void {
  if (!SERVICE.test(name)) throw new OutpostError('BAD_REQUEST', `"${name.slice(0, 80)}" is not a service name (a DNS label: lowercase letters, digits and "-", at most 63)`);
}

function unitFilter(query: URLSearchParams): { unit?: string } {
  const unit = query.get('unit');
  return unit ? { unit } : {};
}

/**
 * Admin API (README "Global view"): `GET services` lists every service with its units and
 * healthy/total instance counts; `GET services/{name}` lists its instances across units with
 * node, unit, address, port, health and the node's phase. `?unit=U` narrows both to one unit.
 */
export function handleServices(deps: RegistryApiDeps, req: IncomingMessage, res: ServerResponse, name: string | undefined, sub: string | undefined, query: URLSearchParams): void {
  if (req.method !== 'GET') throw new OutpostError('METHOD_NOT_ALLOWED', 'services are read-only: agents register them (see README "Local service registry")');
  if (sub !== undefined) throw new OutpostError('NOT_FOUND', `no such path services/${name ?? ''}/${sub}`);
  const filter = unitFilter(query);
  if (name === undefined) {
    const items = deps.view.services().filter((s) => filter.unit === undefined || s.units.includes(filter.unit));
    if (filter.unit === undefined) return sendJson(res, 200, { items });
    // Counts of that unit only.
    return sendJson(res, 200, {
      items: items.map((s) => {
        const list = deps.view.instances(s.service, filter);
        return { service: s.service, units: [filter.unit], healthy: list.filter((i) => i.health === 'passing').length, total: list.length };
      }),
    });
  }
  checkService(name);
  const instances = deps.view.instances(name, filter);
  if (instances.length === 0) throw new OutpostError('NOT_FOUND', `service "${name}" has no instances${filter.unit ? ` in unit ${filter.unit}` : ''} in the hub's view`);
  const phase = (node: string) => (deps.cache.get('EdgeNode', node) as EdgeNode | undefined)?.status?.phase ?? 'Unknown';
  sendJson(res, 200, {
    service: name,
    units: [...new Set(instances.map((i) => i.unit))],
    healthy: instances.filter((i) => i.health === 'passing').length,
    total: instances.length,
    instances: instances.map((i) => ({ ...i, nodePhase: phase(i.node) })),
  });
}

/**
 * Agent API, authenticated with the node credential (Bearer), for resolution across units:
 * `GET /agent/v1/services/{name}`: the service's instances in units other than the caller's
 * (its own unit it knows better itself); `GET /agent/v1/registry/digest`: per-origin digests of
 * the caller's unit as the hub holds it, so a reconnecting agent re-reports only what differs.
 * Returns false when the path is not one of these.
 */
export function handleAgentRegistry(deps: RegistryApiDeps, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  const isService = path.startsWith('/agent/v1/services/');
  if (!isService && path !== '/agent/v1/registry/digest') return false;
  if (req.method !== 'GET') throw new OutpostError('METHOD_NOT_ALLOWED', `use GET on ${path}`);
  const credential = bearerToken(req);
  const who = credential ? deps.secrets.authenticateNode(credential) : undefined;
  if (!who) throw new OutpostError('UNAUTHORIZED', credential ? 'node credential is not valid' : 'missing node credential: send Authorization: Bearer <node credential>');
  const unit = (deps.cache.get('EdgeNode', who.node) as EdgeNode | undefined)?.spec.unit ?? who.unit;
  if (!isService) {
    sendJson(res, 200, { unit, origins: deps.view.digests(unit) });
    return true;
  }
  let name: string;
  try {
    name = decodeURIComponent(path.slice('/agent/v1/services/'.length));
  } catch {
    throw new OutpostError('BAD_REQUEST', 'service name is not valid URL encoding');
  }
  checkService(name);
  deps.metrics.remoteLookups.inc();
  // A node the hub declared Down (on evidence: README "Offline and autonomy") serves nobody from
  // another unit: its instances go out critical. A merely Disconnected node may still serve its site.
  const down = (node: string) => (deps.cache.get('EdgeNode', node) as EdgeNode | undefined)?.status?.phase === 'Down';
  const instances = deps.view.instances(name, { exceptUnit: unit }).map(({ version: _v, ...i }) => (down(i.node) ? { ...i, health: 'critical' as const } : i));
  sendJson(res, 200, { service: name, instances });
  return true;
}
