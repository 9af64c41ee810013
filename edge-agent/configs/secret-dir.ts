import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, statfsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const TMPFS_MAGIC = 0x01021994;

/**
 * Where the files of configs with secretData go: a 0700 directory on tmpfs (/dev/shm) when there
 * is one, so that secret plaintext never lands on a disk; otherwise `<data>/secret-configs`. The
 * tmpfs directory is named after the data directory, so agents on one machine never share it.
 * Nothing is created until the first secret config is written.
 */
export class SecretDir {
  /** The tmpfs directory, or undefined when there is no tmpfs at `shm`. */
  readonly tmpfs: string | undefined;
  readonly fallback: string;

  constructor(dataDir: string, shm = '/dev/shm') {
    this.tmpfs = isTmpfs(shm) ? join(shm, `outpost-${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16)}`) : undefined;
    this.fallback = join(dataDir, 'secret-configs');
  }

  /** Both places a secret config may be in (for cleaning up). */
  get candidates(): string[] {
    return this.tmpfs ? [this.tmpfs, this.fallback] : [this.fallback];
  }

  /** The directory to write to, created 0700; on disk only when tmpfs is missing or unsafe. */
  ensure(): string {
    if (this.tmpfs && ownPrivateDir(this.tmpfs)) return this.tmpfs;
    mkdirSync(this.fallback, { recursive: true, mode: 0o700 });
    return this.fallback;
  }
}

function isTmpfs(path: string): boolean {
  try {
    return statfsSync(path).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** Creates `dir` 0700, or accepts an existing one only if it is a real directory of this user. */
function ownPrivateDir(dir: string): boolean {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  }
  const st = lstatSync(dir);
  // /dev/shm is world-writable: a directory planted there by another user is never used.
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) return false;
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return true;
}
