import { readFileSync } from 'node:fs';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { PeerCertificate } from './device-login.js';

export interface DeviceTlsOptions {
  /** PEM certificate chain of the broker (--mqtt-tls-cert). */
  certFile: string;
  /** PEM private key (--mqtt-tls-key). */
  keyFile: string;
  /** PEM CA that signs device client certificates (--mqtt-tls-ca); without it no client certificate is asked for. */
  caFile?: string;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`MQTT TLS ${what} "${file}" cannot be read: ${(err as Error).message}`);
  }
}

/**
 * A TLS server for MQTT. With a CA, a client certificate is asked for but not required (devices
 * may still log in with a password): whether it verified is decided per connection at login.
 */
export function createDeviceTlsServer(options: DeviceTlsOptions, onSocket: (socket: TLSSocket) => void): Server {
  const cert = readPem(options.certFile, 'certificate');
  const key = readPem(options.keyFile, 'key');
  const ca = options.caFile !== undefined ? readPem(options.caFile, 'CA') : undefined;
  try {
    const server = createServer({ cert, key, ...(ca ? { ca, requestCert: true, rejectUnauthorized: false } : {}), handshakeTimeout: 10_000 }, onSocket);
    // A failed handshake (plain TCP to the TLS port, a bad client) concerns that client only.
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    return server;
  } catch (err) {
    throw new Error(`MQTT TLS: the certificate, key or CA is not usable: ${(err as Error).message}`);
  }
}

/** The client certificate of a TLS connection, or undefined when the client presented none. */
export function peerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  // Node quotes (JSON) a SAN value holding a comma, with the comma escaped: splitting on commas
  // never cuts inside one, and a quoted value never equals a device name.
  const sans: string[] = [];
  for (const entry of (cert.subjectaltname ?? '').split(',')) {
    const [type, value] = entry.trim().split(/:(.*)/s);
    if (type === 'DNS' && value) sans.push(value);
  }
  // RFC 6125 6.4.4: the CN names the certificate only when it has no DNS subject alternative name.
  const cn = cert.subject?.CN as string | string[] | undefined;
  const names = sans.length > 0 ? sans : Array.isArray(cn) ? cn : cn !== undefined ? [cn] : [];
  const verified = socket.authorized;
  const error = socket.authorizationError;
  return { verified, names: [...new Set(names)], ...(verified || !error ? {} : { error: String(error) }) };
}
