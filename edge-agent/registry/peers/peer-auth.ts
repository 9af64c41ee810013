import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh random challenge nonce (base64url, 32 characters). */
export function newNonce(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Proof that the sender holds the unit peer credential: HMAC-SHA256 over the role, the unit, both
 * node names and both nonces. Binding the role and the names means a proof can be neither replayed
 * on another connection (fresh nonces) nor reflected back to its author (role and order differ).
 */
export function peerProof(secret: string, role: 'client' | 'server', unit: string, from: string, to: string, theirNonce: string, ourNonce: string): string {
  return createHmac('sha256', secret).update(`outpost-peer-v1|${role}|${unit}|${from}|${to}|${theirNonce}|${ourNonce}`).digest('hex');
}

/** Whether `proof` was made with one of `secrets` (the current credential and, during a rotation, the previous one). */
export function verifyPeerProof(secrets: readonly string[], proof: string, role: 'client' | 'server', unit: string, from: string, to: string, theirNonce: string, ourNonce: string): boolean {
  const given = Buffer.from(proof, 'hex');
  return secrets.some((s) => {
    const expected = Buffer.from(peerProof(s, role, unit, from, to, theirNonce, ourNonce), 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
