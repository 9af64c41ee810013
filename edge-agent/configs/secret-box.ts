import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Marks a sealed value: `enc:v1:` + base64(iv 12 bytes | GCM tag 16 bytes | ciphertext). */
export const SEALED_PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

/** A sealed value that cannot be opened: the wrong key, or the bytes were changed. */
export class SecretOpenError extends Error {}

export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

/**
 * AES-256-GCM with a fresh random IV per value. `context` (e.g. config name and key) is bound as
 * additional data, so a sealed value moved to another key or config does not open.
 */
export function seal(key: Buffer, plaintext: string, context: string): string {
  if (key.length !== KEY_BYTES) throw new Error(`secret key must be ${KEY_BYTES} bytes, got ${key.length}`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
}

/** Opens a value made by `seal` with the same key and context; throws SecretOpenError otherwise. */
export function open(key: Buffer, sealed: string, context: string): string {
  if (!isSealed(sealed)) throw new SecretOpenError('not a sealed value');
  const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretOpenError('sealed value is truncated');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    // GCM authentication failed: never echo the value or OpenSSL's text.
    throw new SecretOpenError('authentication failed: wrong key, or the sealed value was changed');
  }
}
