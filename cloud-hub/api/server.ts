import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { resolveKind, KINDS } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { tokenEquals } from '../auth/admin-token.js';
import type { HubSecretStore } from '../auth/secret-store.js';
import type { EventLog } from '../events/event-log.js';
import type { HubMetrics } from '../metrics.js';
import type { SessionManager } from '../sessions/session-manager.js';
import type { Store } from '../store/store.js';
import type { ObjectCache } from '../cache/object-cache.js';
import { bearerToken, sendError, sendJson } from './http.js';
import { handleJoin } from './join.js';
import { handleResource } from './resources.js';
import { handleTokens } from './tokens.js';
import { handleDeviceRoute, type DeviceApiDeps } from '../devices/device-api.js';
import type { TunnelApi } from '../tunnel/tunnel-api.js';
import { handleAgentRegistry, handleServices, type RegistryApiDeps } from '../registry/registry-api.js';

export interface ApiDeps {
  store: Store;
  /** API gets and lists are answered from it when given (see ResourceDeps.cache). */
  cache?: ObjectCache;
  secrets: HubSecretStore;
  sessions: SessionManager;
  events: EventLog;
  registry: Registry;
  metrics: HubMetrics;
  log: Logger;
  adminToken: string;
  onNodeDeleted(name: string): void;
  /** Device apply rules, credentials and telemetry (issue 5). */
  devices?: DeviceApiDeps;
  /** Tunnel (issue 8): the CLI's stream WebSocket, the HTTP proxy to edge services, audit events. */
  tunnel?: TunnelApi;
  /** The global service registry view (issue 6). */
  registryView?: RegistryApiDeps;
}

const API_PREFIX = '/apis/outpost.dev/v1alpha1';

/** The hub's one HTTP server: API, join, agent WebSocket upgrades, health and metrics. */
export function createApiServer(deps: ApiDeps): Server {
  const log = deps.log.child({ component: 'api' });
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    route(deps, req, res)
      .catch((err: unknown) => {
        if (!(err instanceof OutpostError)) log.error({ err, method: req.method, url: req.url }, 'request failed');
        sendError(res, err);
      })
      .finally(() => {
        deps.metrics.apiRequests.inc({ method: req.method ?? '', code: String(res.statusCode) });
        deps.metrics.apiDuration.observe({ method: req.method ?? '' }, Number(process.hrtime.bigint() - started) / 1e9);
      });
  });
  server.on('upgrade', (req, socket, head) => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://hub').pathname;
    } catch {
      path = '';
    }
    // A URL that does not parse (e.g. `//[`) never reaches a handler that would parse it again.
    if (path !== '' && deps.tunnel?.handleUpgrade(req, socket, head)) return;
    if (path !== '/agent/v1/connect') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    socket.on('error', () => socket.destroy());
    deps.sessions.handleUpgrade(req, socket, head);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  // Agents keep one long-lived socket; HTTP clients should not hold idle ones forever.
  server.keepAliveTimeout = 5000;
  return server;
}

async function route(deps: ApiDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://hub');
  const path = url.pathname;
  if (path === '/healthz') return sendJson(res, 200, { status: 'ok', sessions: deps.sessions.count });
  if (path === '/metrics') {
    deps.metrics.revisionsBehind.set(deps.sessions.revisionsBehind());
    deps.metrics.admissionQueue.set(deps.sessions.admissionQueue);
    const text = await deps.registry.metrics();
    res.writeHead(200, { 'Content-Type': deps.registry.contentType });
    res.end(text);
    return;
  }
  if (path === '/agent/v1/join') {
    if (req.method !== 'POST') throw new OutpostError('METHOD_NOT_ALLOWED', 'use POST to join');
    return handleJoin(deps, req, res);
  }
  if (deps.registryView && handleAgentRegistry(deps.registryView, req, res, path)) return;
  if (deps.tunnel && (await deps.tunnel.handleRequest(req, res, url))) return;
  if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
    const token = bearerToken(req);
    if (!token || !tokenEquals(token, deps.adminToken)) {
      throw new OutpostError('UNAUTHORIZED', token ? 'admin token is not valid' : 'missing admin token: send Authorization: Bearer <token> (see the admin-token file in the hub data directory)');
    }
    const [plural, name, sub, ...rest] = path.slice(API_PREFIX.length + 1).split('/').map(decodeURIComponent);
    if (!plural) return sendJson(res, 200, { groupVersion: 'outpost.dev/v1alpha1', resources: KINDS.map((k) => ({ name: k.plural, kind: k.kind, shortNames: k.shortNames })) });
    if (rest.length > 0) throw new OutpostError('NOT_FOUND', `no such path ${path}`);
    if (plural === 'jointokens') return handleTokens(deps, req, res, name);
    if (plural === 'services' && deps.registryView) return handleServices(deps.registryView, req, res, name || undefined, sub, url.searchParams);
    if (plural === 'events') {
      if (req.method !== 'GET') throw new OutpostError('METHOD_NOT_ALLOWED', 'events are read-only');
      const filter: { node?: string; objectName?: string; limit?: number } = {};
      const node = url.searchParams.get('node');
      const object = url.searchParams.get('object');
      const limit = url.searchParams.get('limit');
      if (node) filter.node = node;
      if (object) filter.objectName = object;
      if (limit && /^\d+$/.test(limit)) filter.limit = Number(limit);
      return sendJson(res, 200, { items: deps.events.list(filter) });
    }
    const info = KINDS.find((k) => k.plural === plural);
    if (!info) {
      const hint = resolveKind(plural);
      throw new OutpostError('UNKNOWN_KIND', `unknown resource "${plural}"${hint ? `; did you mean ${hint.plural}?` : ''}`);
    }
    if (deps.devices && (await handleDeviceRoute(deps.devices, req, res, info, name || undefined, sub, url.searchParams))) return;
    return handleResource(deps, req, res, info, name || undefined, sub, url.searchParams);
  }
  throw new OutpostError('NOT_FOUND', `no such path ${path}`);
}
