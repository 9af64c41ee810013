import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { AnyObject, DeviceCredential } from '../../shared/api/index.js';
import { API_VERSION } from '../../shared/api/index.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import type { Store } from '../store/store.js';

/** scrypt cost parameters written into every hash (a verifier reads them from the hash, not from here). */
const PARAMS = { N: 16384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;

function scryptAsync(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>` of a password. */
export async function hashPassword(password: string, params: { N: number; r: number; p: number } = PARAMS): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_BYTES, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 });
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Checks a password against a hash of the form above; false for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  // Bounded cost: a hostile hash must not make a verification take minutes or gigabytes.
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0) || N > 2 ** 20 || r > 64 || p > 16) return false;
  const expected = Buffer.from(parts[5] ?? '', 'base64');
  if (expected.length < 16) return false;
  try {
    const key = await scryptAsync(password, Buffer.from(parts[4] ?? '', 'base64'), expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
    return timingSafeEqual(key, expected);
  } catch {
    return false;
  }
}

/** A random password: 24 bytes, base64url (32 characters). */
export function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Creates or rotates a device's credential (named like the device; username = device name).
 * Returns the password: it is stored only as a hash, so this is the one time it is shown.
 */
export async function rotateCredential(store: Store, deviceName: string, now = new Date()): Promise<{ username: string; password: string; credential: DeviceCredential }> {
  const device = await store.get('Device', deviceName);
  if (!device) throw new OutpostError('NOT_FOUND', `device "${deviceName}" not found`);
  const password = newPassword();
  const spec: DeviceCredential['spec'] = { device: deviceName, username: deviceName, passwordHash: await hashPassword(password), createdAt: now.toISOString() };
  const body = { apiVersion: API_VERSION, kind: 'DeviceCredential', metadata: { name: deviceName }, spec } as AnyObject;
  const existing = await store.get('DeviceCredential', deviceName);
  let stored: AnyObject;
  if (existing) {
    stored = await store.update(body);
  } else {
    try {
      stored = await store.create(body);
    } catch (err) {
      // Two rotations at once: the other created it; rotate over it.
      if (!isOutpostError(err, 'ALREADY_EXISTS')) throw err;
      stored = await store.update(body);
    }
  }
  return { username: deviceName, password, credential: stored as DeviceCredential };
}
