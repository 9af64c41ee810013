import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface DirModes {
  dir: number;
  file: number;
}

/**
 * Makes `dir` hold exactly `files` (name -> content). Each changed file is written to a temp
 * file in the same directory and renamed over the old one, so a process reading it sees the old
 * or the new content, never a part. Unchanged files are not touched. Keys never start with '.',
 * so temp names cannot collide with them. Returns whether anything changed.
 */
export function syncDirectory(dir: string, files: ReadonlyMap<string, string>, modes: DirModes): boolean {
  mkdirSync(dir, { recursive: true, mode: modes.dir });
  if ((lstatSync(dir).mode & 0o777) !== modes.dir) chmodSync(dir, modes.dir);
  let changed = false;
  for (const [name, content] of files) {
    const path = join(dir, name);
    if (sameContent(path, content, modes.file)) continue;
    const tmp = join(dir, `.${name}.tmp-${randomBytes(4).toString('hex')}`);
    const fd = openSync(tmp, 'wx', modes.file);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    }
    closeSync(fd);
    renameSync(tmp, path);
    changed = true;
  }
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (files.has(entry.name) || entry.isDirectory()) continue;
    rmSync(join(dir, entry.name), { force: true });
    changed = true;
  }
  return changed;
}

function sameContent(path: string, content: string, mode: number): boolean {
  try {
    const st = lstatSync(path);
    return st.isFile() && (st.mode & 0o777) === mode && readFileSync(path, 'utf8') === content;
  } catch {
    return false;
  }
}
