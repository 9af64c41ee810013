// Hub HTTP proxy headers (issue 8 review): no credential, hop-by-hop or client-forged forwarding headers reach the edge.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forwardedHeaders } from '../../cloud-hub/tunnel/http-proxy.js';

test('drops the token, hop-by-hop headers, headers the Connection header names, and client X-Forwarded-*', () => {
  const out = forwardedHeaders({
    authorization: 'Bearer admin-secret',
    connection: 'keep-alive, X-Internal-Auth',
    'x-internal-auth': 'smuggled',
    'x-forwarded-for': '10.9.9.9',
    'x-forwarded-prefix': '/evil',
    'transfer-encoding': 'chunked',
    host: 'hub:7443',
    accept: 'text/html',
    cookie: 'dash=1',
  });
  assert.deepEqual(out, { accept: 'text/html', cookie: 'dash=1' });
});
