import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { LocalRoute } from './http-util.js';

export interface LocalApiDeps {
  registry: Registry;
  /** The document served at /status (and summarised at /healthz). */
  status(): Record<string, unknown>;
  /** Further routes (the service registry's /v1/registry/...), tried in order before the 404. */
  routes?: readonly LocalRoute[];
}

/** The agent's HTTP endpoint on the node: /healthz, /v1/status (alias /status), /metrics, plus `routes`. Works with the cloud gone. */
export function createLocalApi(deps: LocalApiDeps): Server {
  return createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://agent');
    } catch {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ code: 'OUTPOST_BAD_REQUEST', message: 'malformed request URL' }));
      return;
    }
    const path = url.pathname;
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/healthz') return json(200, { status: 'ok', cloud: deps.status().cloud });
    if (path === '/v1/status' || path === '/status') return json(200, deps.status());
    if (path === '/metrics') {
      deps.registry.metrics().then(
        (text) => { res.writeHead(200, { 'Content-Type': deps.registry.contentType }); res.end(text); },
        () => json(500, { code: 'OUTPOST_INTERNAL', message: 'metrics failed' }),
      );
      return;
    }
    for (const route of deps.routes ?? []) if (route(req, res, url)) return;
    json(404, { code: 'OUTPOST_NOT_FOUND', message: `no such path ${path}` });
  });
}
