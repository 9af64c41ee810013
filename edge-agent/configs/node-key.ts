import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KEY_BYTES } from './secret-box.js';

export const NODE_KEY_FILE = 'config.key';

/**
 * The node's key for EdgeConfig secrets at rest: `<data>/config.key`, 32 random bytes (base64),
 * mode 0600, made on first start and never sent anywhere. Losing it loses nothing: the agent
 * reports the sealed rows as unreadable and the hub sends them again (sealed with the new key).
 */
export function loadOrCreateNodeKey(dataDir: string): Buffer {
  const path = join(dataDir, NODE_KEY_FILE);
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text === undefined) return createKey(path);
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${path} does not hold a ${KEY_BYTES}-byte key (base64); move it aside to make a new one (cached secrets are then fetched again from the hub)`);
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return key;
}

function createKey(path: string): Buffer {
  const key = randomBytes(KEY_BYTES);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${key.toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // The key must be on disk before any value sealed with it is.
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return key;
}
