#!/usr/bin/env node
// `npm run build` (also run by `npm ci` / `npm install` as the `prepare` script): compiles the
// TypeScript sources (shared, cloud-hub, edge-agent, cli) file by file to dist/ with esbuild (tsx's
// own compiler; type checking is `npm run typecheck`), then writes dist/.build-stamp.json, which
// bin/outpost.js checks before it runs dist/ (bin/dist-stamp.js). A few hundred ms.
//
// Safe beside running processes: a file is rewritten only when its output changed, through a
// temporary file and a rename, and the stamp is written last; a source changed during the build
// leaves a stamp that no longer matches, so bin/outpost.js keeps running the sources.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { transform } from 'esbuild';
import { listInputs, RACY_MS, SOURCE_DIRS, STAMP_FILE, statInputs } from '../bin/dist-stamp.js';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const dist = join(root, 'dist');
const started = Date.now();

// Stat first, read after: a source written after its stat gets a newer mtime than the stamp records.
const inputs = listInputs(root);
const stats = statInputs(root, inputs);
const racy = {};
const sha = (buf) => createHash('sha256').update(buf).digest('hex');
const compilerOptions = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')).compilerOptions;

function writeIfChanged(file, text) {
  try {
    if (readFileSync(file, 'utf8') === text) return false;
  } catch { /* new file */ }
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
  return true;
}

const wanted = new Set();
let written = 0;
await Promise.all(inputs.map(async (rel) => {
  const src = readFileSync(join(root, rel));
  if (Number(stats[rel].split(':')[1]) >= started - RACY_MS) racy[rel] = sha(src);
  if (!SOURCE_DIRS.some((d) => rel.startsWith(`${d}/`))) return;
  if (!rel.endsWith('.ts')) {
    wanted.add(join(dist, rel));
    if (writeIfChanged(join(dist, rel), src.toString('utf8'))) written++;
    return;
  }
  const out = join(dist, rel.replace(/\.ts$/, '.js'));
  const r = await transform(src.toString('utf8'), {
    loader: 'ts', format: 'esm', platform: 'node', target: 'node20', sourcemap: 'external',
    sourcefile: relative(dirname(out), join(root, rel)), tsconfigRaw: { compilerOptions },
  });
  const name = out.slice(dirname(out).length + 1);
  wanted.add(out).add(`${out}.map`);
  if (writeIfChanged(out, `${r.code}//# sourceMappingURL=${name}.map\n`)) written++;
  writeIfChanged(`${out}.map`, r.map);
}));

// Outputs whose source is gone (renamed or deleted files): remove, as the sources no longer have them.
let removed = 0;
const prune = (dir) => {
  let entries;
  try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) prune(p);
    else if (!wanted.has(p) && !p.endsWith('.tmp')) { rmSync(p, { force: true }); removed++; }
  }
};
for (const d of SOURCE_DIRS) prune(join(dist, d));

// The stamp records the stats taken before reading: any later change to an input fails the check.
const stampTmp = join(root, `${STAMP_FILE}.${process.pid}.tmp`);
writeFileSync(stampTmp, `${JSON.stringify({ builtAt: new Date(started).toISOString(), files: stats, racy }, null, 1)}\n`);
renameSync(stampTmp, join(root, STAMP_FILE));
const ms = Date.now() - started;
console.log(`build: ${inputs.length} inputs -> dist/ (${written} written, ${removed} removed) in ${ms} ms${Object.keys(racy).length ? `; ${Object.keys(racy).length} changed within ${RACY_MS / 1000} s, checked by content` : ''}`);
