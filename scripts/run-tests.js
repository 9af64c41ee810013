#!/usr/bin/env node
// The README's test command (`npm test`): lint, type-check, then every test/**/*.test.ts with
// node's test runner through tsx. Pass file paths or a substring to run a subset:
//   npm test -- test/unit            npm test -- store
// Set OUTPOST_TEST_SKIP_LINT=1 to skip lint and type-check while iterating.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const filters = process.argv.slice(2);
const files = collect(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

if (!process.env.OUTPOST_TEST_SKIP_LINT && filters.length === 0) {
  console.log('# lint (eslint) and type-check (tsc)');
  run(process.execPath, [join(root, 'node_modules/eslint/bin/eslint.js'), '--max-warnings=0', '.']);
  run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', 'tsconfig.json']);
}

// Integration tests start real processes; two files at a time keeps a 2-core machine responsive.
// The per-file timeout only bounds a hang: the chaos file runs two seeds of about 80 s each (each
// test has its own 170 s timeout), which came within seconds of a 180 s file limit on this machine.
const concurrency = process.env.OUTPOST_TEST_CONCURRENCY ?? '2';
run(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=420000', ...files]);
