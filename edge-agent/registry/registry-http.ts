import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { readJsonBody, sendError, sendJson, type LocalRoute } from '../local-api/http-util.js';
import { checkNames, parseRegisterBody } from './instance-body.js';
import type { RegistryMetrics } from './registry-metrics.js';
import type { RegistryState } from './registry-state.js';
import type { RegistryWatches } from './registry-watches.js';
import { serveStream } from './registry-stream.js';
import type { ServiceLookup } from './service-lookup.js';
import type { TtlLeases } from './ttl-leases.js';

export interface RegistryHttpDeps {
  registry: RegistryState;
  leases: TtlLeases;
  watches: RegistryWatches;
  lookup: ServiceLookup;
  metrics: RegistryMetrics;
  log: Logger;
  /** Settles when lookups may be answered (see LocalRegistry.holdLookupsUntil). */
  ready?: () => Promise<void>;
}

export interface RegistryHttpOptions {
  /** A blocking query waits at most this long, ms. Default 300 000 (5 min). */
  maxWaitMs?: number;
  /** Wait of a blocking query that gives ?index but no ?wait, ms. Default 30 000. */
  defaultWaitMs?: number;
}

const PREFIX = '/v1/registry/services';
const INDEX_HEADER = 'X-Outpost-Index';

/**
 * The registry's HTTP API on the agent's local API server (README "Local service registry"):
 *   PUT    /v1/registry/services/<service>/instances/<id>            register (TTL lease)
 *   DELETE /v1/registry/services/<service>/instances/<id>            deregister
 *   PUT    /v1/registry/services/<service>/instances/<id>/heartbeat  renew the TTL lease
 *   GET    /v1/registry/services[?index=N&wait=30s | ?watch=true]    services on this node's view
 *   GET    /v1/registry/services/<service>[?all=true&unit=U&index=N&wait=30s | ?watch=true]
 * Every answer carries the registry index (header X-Outpost-Index and `index` in the body).
 */
export function registryRoutes(deps: RegistryHttpDeps, options: RegistryHttpOptions = {}): LocalRoute {
  const maxWaitMs = options.maxWaitMs ?? 300_000;
  const defaultWaitMs = options.defaultWaitMs ?? 30_000;
  const { registry } = deps;

  const answer = (res: ServerResponse, status: number, body: Record<string, unknown>) => {
    const index = registry.index();
    sendJson(res, status, { index, ...body }, { [INDEX_HEADER]: String(index) });
  };

  const listServices = async () => {
    await deps.ready?.();
    const services = registry.services().map((name) => {
      const all = registry.lookup(name, { all: true });
      return { name, instances: all.length, passing: all.filter((i) => i.health === 'passing').length };
    });
    return { services };
  };

  const lookupOptions = (url: URL) => {
    const all = url.searchParams.get('all');
    if (all !== null && all !== 'true' && all !== 'false') throw new OutpostError('BAD_REQUEST', `all: expected true or false, got ${JSON.stringify(all)}`);
    const unit = url.searchParams.get('unit');
    if (unit !== null && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(unit)) throw new OutpostError('BAD_REQUEST', `unit: ${JSON.stringify(unit.slice(0, 80))} is not a unit name`);
    return { all: all === 'true', ...(unit !== null ? { unit } : {}) };
  };

  /** ?index=N&wait=D: waits until `changedAfter(N)`; an index from the future (an earlier life of this agent) answers at once. */
  const block = async (req: IncomingMessage, url: URL, changedAfter: (n: number) => boolean) => {
    const raw = url.searchParams.get('index');
    if (raw === null) return;
    if (!/^\d{1,15}$/.test(raw)) throw new OutpostError('BAD_REQUEST', `index: expected a whole number, got ${JSON.stringify(raw.slice(0, 40))}`);
    const after = Number(raw);
    const waitText = url.searchParams.get('wait');
    const waitMs = Math.min(maxWaitMs, waitText === null ? defaultWaitMs : parseDuration(waitText, 'wait'));
    if (after > registry.index() || changedAfter(after)) return;
    const release = deps.watches.acquire('blocking');
    const gone = new AbortController();
    const onClose = () => gone.abort();
    req.socket.once('close', onClose);
    try {
      await deps.watches.wait(() => changedAfter(after), waitMs, gone.signal);
    } finally {
      req.socket.off('close', onClose);
      release();
    }
  };

  const wantsStream = (req: IncomingMessage, url: URL) => url.searchParams.get('watch') === 'true' || (req.headers.accept ?? '').includes('text/event-stream');

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL, parts: string[]) => {
    const method = req.method ?? 'GET';
    // GET /v1/registry/services
    if (parts.length === 0) {
      if (method !== 'GET') throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${PREFIX}; use GET`);
      if (wantsStream(req, url)) return serveStream(registry, req, res, { snapshot: listServices, release: deps.watches.acquire('stream') });
      await block(req, url, (n) => registry.index() > n);
      return answer(res, 200, await listServices());
    }
    const service = parts[0] ?? '';
    checkNames(service);
    // GET /v1/registry/services/<service>
    if (parts.length === 1) {
      if (method !== 'GET') throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${PREFIX}/${service}; use GET`);
      const opts = lookupOptions(url);
      const snapshot = async () => {
        await deps.ready?.();
        return { service, instances: await deps.lookup(service, opts) };
      };
      if (wantsStream(req, url)) return serveStream(registry, req, res, { service, snapshot, release: deps.watches.acquire('stream') });
      await block(req, url, (n) => registry.serviceIndex(service) > n);
      return answer(res, 200, await snapshot());
    }
    if (parts[1] !== 'instances' || parts.length < 3 || parts.length > 4 || (parts.length === 4 && parts[3] !== 'heartbeat')) {
      throw new OutpostError('NOT_FOUND', `no such path ${url.pathname}`);
    }
    const id = parts[2] ?? '';
    checkNames(service, id);
    const held = registry.get(`${service}/${id}`);
    if (held?.instance?.lease.kind === 'process' && held.origin === registry.node) {
      throw new OutpostError('CONFLICT', `instance ${id} of ${service} is registered by the agent for EdgeApp instance ${held.instance.lease.instance}; it follows that instance and cannot be changed over HTTP`);
    }
    if (parts.length === 4) {
      if (method !== 'PUT') throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed on a heartbeat; use PUT`);
      const record = deps.leases.heartbeat(service, id);
      return answer(res, 200, { health: record.instance?.health });
    }
    if (method === 'PUT') {
      const started = performance.now();
      const input = parseRegisterBody(service, id, await readJsonBody(req));
      const record = registry.register(input);
      deps.leases.heartbeat(service, id); // a registration renews the lease, also when nothing changed
      deps.metrics.registerToVisible.observe((performance.now() - started) / 1000);
      return answer(res, 200, { record: registry.get(record.key) ?? record });
    }
    if (method === 'DELETE') {
      const record = registry.deregister(service, id);
      if (!record) throw new OutpostError('NOT_FOUND', `no instance ${id} of service ${service} is registered`);
      return answer(res, 200, { record });
    }
    throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed on an instance; use PUT or DELETE`);
  };

  return (req, res, url) => {
    if (url.pathname !== PREFIX && !url.pathname.startsWith(`${PREFIX}/`)) return false;
    let parts: string[];
    try {
      parts = url.pathname.slice(PREFIX.length).split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
    } catch {
      sendError(res, new OutpostError('BAD_REQUEST', 'malformed percent-encoding in the path'));
      return true;
    }
    handle(req, res, url, parts).catch((err: unknown) => {
      if (!isOutpostError(err)) deps.log.error({ err, path: url.pathname }, 'registry request failed');
      if (!res.headersSent) {
        const index = registry.index();
        res.setHeader(INDEX_HEADER, String(index));
      }
      sendError(res, err);
    });
    return true;
  };
}
