import { request } from 'node:http';
import type { Probe } from '../../../shared/api/workload.js';
import { describeError, hostPort, type Check, type CheckOutcome } from './check.js';

/** Bytes of the response body read before the connection is dropped (Kubernetes reads 10 KiB). */
const MAX_BODY_BYTES = 10 * 1024;

/**
 * GET http://host:port/path on a fresh connection (no keep-alive). Success: status 200..399,
 * redirects not followed. The body is read up to MAX_BODY_BYTES so that a server sees a normal
 * exchange, then the connection is closed.
 */
export function httpCheck(get: NonNullable<Probe['httpGet']>, defaultHost: string): Check {
  const host = get.host ?? defaultHost;
  const path = get.path ?? '/';
  const label = `GET http://${hostPort(host, get.port)}${path}`;
  const run = (signal: AbortSignal): Promise<CheckOutcome> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host, port: get.port, path, method: 'GET', agent: false, signal, headers: { 'user-agent': 'outpost-probe', accept: '*/*', connection: 'close' } },
        (res) => {
          const status = res.statusCode ?? 0;
          let bytes = 0;
          const finish = () => {
            res.destroy();
            resolve({ ok: status >= 200 && status < 400, message: `${label}: HTTP ${status}` });
          };
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes >= MAX_BODY_BYTES) finish();
          });
          res.once('end', finish);
          res.on('error', reject);
        },
      );
      // 'on', not 'once': an abort after a socket error emits a second error.
      req.on('error', reject);
      req.end();
    });
  return { label, run };
}
