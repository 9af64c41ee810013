import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { newSecret } from '../../shared/secrets.js';

/** Reads the admin token file, creating it (mode 0600) with a new random token on first start. */
export function loadOrCreateAdminToken(path: string): string {
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) {
      chmodSync(path, 0o600);
      return token;
    }
  }
  const token = `adm_${newSecret()}`;
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return token;
}

export function tokenEquals(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
