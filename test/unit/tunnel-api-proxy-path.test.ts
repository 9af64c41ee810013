// Hub tunnel API (issue 8 review): a malformed proxy path is a 400 naming it, not an internal error.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { TunnelApi, type TunnelApiDeps } from '../../cloud-hub/tunnel/tunnel-api.js';
import { isOutpostError } from '../../shared/errors.js';

test('a proxy path with a malformed percent escape is refused as BAD_REQUEST and opens nothing', async () => {
  let opened = 0;
  const deps = {
    cache: { get: () => undefined, list: () => [] },
    sessions: { openStream: () => { opened++; return Promise.reject(new Error('unexpected')); } },
    audit: { append: () => undefined, list: () => [] },
    adminToken: 'token-1',
    log: { info: () => undefined, debug: () => undefined, error: () => undefined, warn: () => undefined },
  } as unknown as TunnelApiDeps;
  const api = new TunnelApi(deps);
  const req = { headers: { authorization: 'Bearer token-1' }, method: 'GET', socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  const url = new URL('http://hub/api/v1/proxy/apps/%zz/80/index.html');
  await assert.rejects(api.handleRequest(req, {} as ServerResponse, url), (err: unknown) => isOutpostError(err) && err.code === 'OUTPOST_BAD_REQUEST' && /percent-encoding/.test(err.message));
  assert.equal(opened, 0);
  api.stop();
});
