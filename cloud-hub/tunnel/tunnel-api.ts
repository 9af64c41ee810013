import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { isOutpostError, OutpostError, toErrorBody } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { STREAM_KINDS, type OpenRequest, type StreamKind, type StreamParams } from '../../shared/protocol/streams.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import { tokenEquals } from '../auth/admin-token.js';
import type { ObjectCache } from '../cache/object-cache.js';
import { bearerToken, sendJson } from '../api/http.js';
import type { AuditLog } from './audit-log.js';
import { proxyThroughStream } from './http-proxy.js';
import { resolveTarget, type ResolvedTarget } from './target-resolver.js';
import type { TunnelMetrics } from './tunnel-metrics.js';
import { FramedSocket, RELAY_PROTOCOL } from '../../shared/tunnel/framed-socket.js';
import { relayStream, type RelayPeer } from './relay.js';
import { WebSocketPeer } from '../../shared/tunnel/websocket-peer.js';

/** WebSocket upgrade: one tunnel stream per socket. */
export const TUNNEL_PATH = '/api/v1/tunnel';
/** HTTP proxy: /api/v1/proxy/instances/<instance>/<port>/<path> or /api/v1/proxy/apps/<app>/<port>/<path>. */
export const PROXY_PREFIX = '/api/v1/proxy/';
/** Audit events: GET /api/v1/audit?app=&node=&limit=. */
export const AUDIT_PATH = '/api/v1/audit';

/** Query keys of the tunnel endpoint that are not stream params. */
const RESERVED = new Set(['kind', 'app', 'instance', 'unit', 'node', 'port', 'address']);

export interface TunnelApiDeps {
  cache: ObjectCache;
  sessions: { openStream(node: string, req: OpenRequest): Promise<TunnelStream> };
  audit: AuditLog;
  adminToken: string;
  log: Logger;
  metrics?: TunnelMetrics;
}

/** The operator's side of the tunnel: the CLI's WebSocket endpoint, the HTTP proxy, the audit list. */
export class TunnelApi {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });

  constructor(private readonly deps: TunnelApiDeps) {}

  /** Handles `GET /api/v1/tunnel` upgrades; false for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://hub');
    } catch {
      return false;
    }
    if (url.pathname !== TUNNEL_PATH) return false;
    socket.on('error', () => socket.destroy());
    void this.upgrade(req, socket, head, url);
    return true;
  }

  /** Handles the proxy and audit paths; false for other paths. */
  async handleRequest(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === AUDIT_PATH) {
      this.authenticate(req);
      if (req.method !== 'GET') throw new OutpostError('METHOD_NOT_ALLOWED', 'audit events are read-only');
      const limit = url.searchParams.get('limit');
      sendJson(res, 200, { items: this.deps.audit.list({ ...(url.searchParams.get('app') ? { app: url.searchParams.get('app') as string } : {}), ...(url.searchParams.get('node') ? { node: url.searchParams.get('node') as string } : {}), ...(limit && /^\d+$/.test(limit) ? { limit: Number(limit) } : {}) }) });
      return true;
    }
    if (!url.pathname.startsWith(PROXY_PREFIX)) return false;
    this.authenticate(req);
    const [scope, name, portText, ...rest] = url.pathname.slice(PROXY_PREFIX.length).split('/');
    const port = Number(portText);
    if ((scope !== 'instances' && scope !== 'apps') || !name || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new OutpostError('BAD_REQUEST', `proxy path must be ${PROXY_PREFIX}instances/<instance>/<port>/<path> or ${PROXY_PREFIX}apps/<app>/<port>/<path>`);
    }
    const decoded = decodePathSegment(name);
    const query = { kind: 'http' as const, ...(scope === 'apps' ? { app: decoded } : { instance: decoded }), ...optional(url, 'unit'), ...optional(url, 'node') };
    const path = `/${rest.join('/')}${url.search}`;
    const stream = await this.open(req, query, { port }, {}, `${req.method ?? 'GET'} :${port}${path.slice(0, 200)}`);
    await proxyThroughStream(req, res, stream, { path, prefix: `${PROXY_PREFIX}${scope}/${name}/${port}`, port });
    return true;
  }

  stop(): void {
    for (const ws of this.wss.clients) ws.terminate();
    for (const f of this.framed) f.terminate();
    this.wss.close();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    let stream: TunnelStream;
    try {
      this.authenticate(req);
      const kind = url.searchParams.get('kind') ?? '';
      if (!(STREAM_KINDS as readonly string[]).includes(kind)) throw new OutpostError('BAD_REQUEST', `kind must be one of ${STREAM_KINDS.join(', ')}`);
      const portText = url.searchParams.get('port');
      const port = portText === null ? undefined : Number(portText);
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new OutpostError('BAD_REQUEST', `port must be an integer 1-65535, got ${JSON.stringify(portText?.slice(0, 20))}`);
      if ((kind === 'port-forward' || kind === 'http') && port === undefined) throw new OutpostError('BAD_REQUEST', `${kind} needs port=`);
      const params = streamParams(url);
      const query = { kind: kind as StreamKind, ...optional(url, 'app'), ...optional(url, 'instance'), ...optional(url, 'unit'), ...optional(url, 'node') };
      const detail = kind === 'exec' ? JSON.stringify(params.command ?? []) : port !== undefined ? `port ${port}` : JSON.stringify(params);
      stream = await this.open(req, query, port === undefined ? {} : { port }, params, detail);
    } catch (err) {
      writeHttpError(socket, err);
      return;
    }
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    const relay = (peer: RelayPeer) => {
      peer.sendControl({ type: 'opened', kind: stream.open.kind, instance: stream.open.target.instance, node: this.nodeOf(stream) });
      relayStream(peer, stream, this.deps.log, this.deps.metrics);
    };
    if (wantsFraming(req)) {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RELAY_PROTOCOL}\r\n\r\n`);
      if ('setNoDelay' in socket) (socket as Socket).setNoDelay(true);
      const framed = new FramedSocket(socket, { head });
      this.framed.add(framed);
      framed.once('close', () => this.framed.delete(framed));
      relay(framed);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => relay(new WebSocketPeer(ws)));
  }

  /** Open `outpost-stream` connections (the CLI's), ended by stop(). */
  private readonly framed = new Set<FramedSocket>();

  private readonly nodes = new WeakMap<TunnelStream, string>();

  private nodeOf(stream: TunnelStream): string | undefined {
    return this.nodes.get(stream);
  }

  /** Resolves, authorizes, audits and opens. */
  private async open(req: IncomingMessage, query: Parameters<typeof resolveTarget>[1], target: { port?: number }, params: StreamParams, detail: string): Promise<TunnelStream> {
    const source = req.socket.remoteAddress ?? '';
    let resolved: ResolvedTarget | undefined;
    try {
      resolved = resolveTarget(this.deps.cache, query);
      const stream = await this.deps.sessions.openStream(resolved.node, { kind: query.kind, target: { instance: resolved.instance, ...target }, params, user: 'admin' });
      this.nodes.set(stream, resolved.node);
      const open = this.deps.metrics?.open;
      open?.inc({ kind: query.kind });
      stream.once('close', () => open?.dec({ kind: query.kind }));
      this.record({ query, resolved, source, detail, outcome: 'opened' });
      return stream;
    } catch (err) {
      this.record({ query, resolved, source, detail, outcome: isOutpostError(err) ? err.code : 'OUTPOST_INTERNAL' });
      throw err;
    }
  }

  private record(e: { query: Parameters<typeof resolveTarget>[1]; resolved: ResolvedTarget | undefined; source: string; detail: string; outcome: string }): void {
    const event = {
      time: new Date().toISOString(), user: 'admin', source: e.source, action: e.query.kind,
      app: e.resolved?.app ?? e.query.app ?? '', instance: e.resolved?.instance ?? e.query.instance ?? '', node: e.resolved?.node ?? '', detail: e.detail, outcome: e.outcome,
    };
    this.deps.metrics?.streams.inc({ kind: event.action, outcome: event.outcome });
    try {
      this.deps.audit.append(event);
    } catch (err) {
      this.deps.log.error({ err }, 'could not store a tunnel audit event');
    }
    this.deps.log.info({ audit: event }, 'tunnel stream');
  }

  private authenticate(req: IncomingMessage): void {
    const token = bearerToken(req);
    if (!token || !tokenEquals(token, this.deps.adminToken)) {
      throw new OutpostError('UNAUTHORIZED', token ? 'admin token is not valid' : 'missing admin token: send Authorization: Bearer <token>');
    }
  }
}

/** A percent-decoded path segment; a malformed escape (%zz) is the client's error, not a 500. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new OutpostError('BAD_REQUEST', `proxy path segment ${JSON.stringify(segment.slice(0, 100))} is not valid percent-encoding`);
  }
}

function optional(url: URL, key: 'app' | 'instance' | 'unit' | 'node'): Partial<Record<typeof key, string>> {
  const v = url.searchParams.get(key);
  return v ? { [key]: v } : {};
}

/** Query params other than the target: `command` is always a list; "true"/"false" booleans; digits numbers. */
function streamParams(url: URL): StreamParams {
  const params: StreamParams = {};
  for (const key of new Set(url.searchParams.keys())) {
    if (RESERVED.has(key)) continue;
    const values = url.searchParams.getAll(key);
    const typed = values.map((v) => (v === 'true' ? true : v === 'false' ? false : /^\d{1,15}$/.test(v) ? Number(v) : v));
    params[key] = key === 'command' || typed.length > 1 ? typed.map(String) : typed[0];
  }
  if (params.command !== undefined && !Array.isArray(params.command)) params.command = [String(params.command)];
  return params;
}

/** The CLI asks for the plain framing (shared/tunnel/framed-socket.ts); anything else gets WebSocket. */
function wantsFraming(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === RELAY_PROTOCOL;
}

function writeHttpError(socket: Duplex, err: unknown): void {
  const status = err instanceof OutpostError ? err.status : 500;
  const body = JSON.stringify(toErrorBody(err));
  if (!socket.destroyed) socket.end(`HTTP/1.1 ${status} Tunnel Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
