import type { ClientOptions } from 'ws';

const ZERO_MASK = (mask: Buffer): void => {
  mask.fill(0);
};

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/;

/**
 * WebSocket client options for connections that carry tunnel data (the agent's hub link; the
 * CLI's tunnel connections speak shared/tunnel/framed-socket.ts instead). No compression: stream data is often already compressed, and deflate
 * costs CPU and a copy per byte. Over TLS or loopback, a zero masking key: ws then skips masking,
 * a copy and an XOR of every byte sent. Masking exists so that a proxy that does not understand
 * WebSocket cannot be fed crafted bytes in clear text (RFC 6455 section 10.3); no such proxy can
 * read a TLS connection or sits on loopback. Plain ws:// to another host keeps random masks.
 */
export function bulkClientOptions(url: URL | string): Pick<ClientOptions, 'perMessageDeflate' | 'generateMask'> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const safe = u.protocol === 'wss:' || LOOPBACK.test(u.hostname);
  return safe ? { perMessageDeflate: false, generateMask: ZERO_MASK } : { perMessageDeflate: false };
}
