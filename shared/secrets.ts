import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random secret, URL-safe, 256 bits. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function newId(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * Secrets here are 256-bit random values, not passwords, so one SHA-256 is enough to make a
 * stolen database useless; a slow KDF would only slow down 10 000 reconnecting agents.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, expectedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(expectedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Splits `id.secret` (join tokens and node credentials); undefined when malformed. */
export function splitToken(token: string): { id: string; secret: string } | undefined {
  const m = /^([a-f0-9]{12})\.([A-Za-z0-9_-]{16,128})$/.exec(token.trim());
  return m ? { id: m[1] ?? '', secret: m[2] ?? '' } : undefined;
}
