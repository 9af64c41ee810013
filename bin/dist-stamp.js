// Is dist/ (the compiled build of the TypeScript sources) current? bin/outpost.js runs dist/ only
// when it is; otherwise it runs the sources through tsx, so an edited source never runs stale.
//
// scripts/build.js writes dist/.build-stamp.json last, listing every input file (the source
// directories, tsconfig.json, the build script and this file) with its size and mtime. dist/ is
// current when the same files exist with the same sizes and mtimes. An input whose mtime lies within
// RACY_MS of the build's start could have been changed again within the file system's timestamp
// granularity without its mtime moving ("racy git"): the stamp holds its content hash as well, and
// the check reads and hashes those few files. Cost: a directory walk and ~250 stat calls, a few ms.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const SOURCE_DIRS = ['shared', 'cloud-hub', 'edge-agent', 'cli'];
export const EXTRA_INPUTS = ['tsconfig.json', 'scripts/build.js', 'bin/dist-stamp.js'];
export const STAMP_FILE = 'dist/.build-stamp.json';
export const RACY_MS = 2000;

/** Every build input, relative to root, sorted. */
export function listInputs(root) {
  const out = [...EXTRA_INPUTS];
  const walk = (dir) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else out.push(rel);
    }
  };
  for (const d of SOURCE_DIRS) walk(d);
  return out.sort();
}

/** `size:mtimeMs` of each input. */
export function statInputs(root, files) {
  const out = {};
  for (const f of files) {
    const s = statSync(join(root, f));
    out[f] = `${s.size}:${s.mtimeMs}`;
  }
  return out;
}

export async function contentHash(root, file) {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(readFileSync(join(root, file))).digest('hex');
}

/** True when dist/ was built from exactly the sources now on disk; false on any doubt. */
export async function distIsCurrent(root) {
  try {
    const stamp = JSON.parse(readFileSync(join(root, STAMP_FILE), 'utf8'));
    const files = listInputs(root);
    if (files.length !== Object.keys(stamp.files).length) return false;
    const now = statInputs(root, files);
    for (const f of files) if (stamp.files[f] !== now[f]) return false;
    for (const [f, hash] of Object.entries(stamp.racy ?? {})) if ((await contentHash(root, f)) !== hash) return false;
    return true;
  } catch {
    return false;
  }
}
