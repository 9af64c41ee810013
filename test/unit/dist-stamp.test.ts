// bin/outpost.js runs dist/ only when bin/dist-stamp.js says it is current: every way a source can
// change after a build must make it say no (README "What `outpost` runs").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { contentHash, distIsCurrent, EXTRA_INPUTS, listInputs, SOURCE_DIRS, STAMP_FILE, statInputs } from '../../bin/dist-stamp.js';

function tree(): string {
  const root = mkdtempSync(join(tmpdir(), 'outpost-stamp-'));
  const files = [...EXTRA_INPUTS, ...SOURCE_DIRS.map((d) => `${d}/a.ts`), 'shared/sub/b.ts'];
  for (const f of files) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), `// ${f}\nexport const x = 1;\n`);
  }
  return root;
}

async function stamp(root: string, racy: string[] = []): Promise<void> {
  const hashes: Record<string, string> = {};
  for (const f of racy) hashes[f] = await contentHash(root, f);
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, STAMP_FILE), JSON.stringify({ files: statInputs(root, listInputs(root)), racy: hashes }));
}

test('dist/ is current right after the stamp, and not without one', async () => {
  const root = tree();
  try {
    assert.equal(await distIsCurrent(root), false);
    await stamp(root);
    assert.equal(await distIsCurrent(root), true);
    writeFileSync(join(root, STAMP_FILE), '{ not json');
    assert.equal(await distIsCurrent(root), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an edited, added or removed source, or a changed tsconfig.json, makes dist/ stale', async () => {
  const root = tree();
  try {
    const file = join(root, 'edge-agent/a.ts');
    await stamp(root);
    writeFileSync(file, '// edited, longer than before\nexport const x = 2;\n');
    assert.equal(await distIsCurrent(root), false, 'edited (size and mtime)');

    await stamp(root);
    const before = statSync(file);
    utimesSync(file, before.atime, new Date(before.mtimeMs + 1000));
    assert.equal(await distIsCurrent(root), false, 'same size, newer mtime');

    await stamp(root);
    writeFileSync(join(root, 'cli/new.ts'), 'export {};\n');
    assert.equal(await distIsCurrent(root), false, 'added');

    await stamp(root);
    rmSync(join(root, 'shared/sub/b.ts'));
    assert.equal(await distIsCurrent(root), false, 'removed');

    await stamp(root);
    writeFileSync(join(root, 'tsconfig.json'), '{"compilerOptions":{}}\n');
    assert.equal(await distIsCurrent(root), false, 'tsconfig.json');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a file changed within the timestamp granularity (same size and mtime) is caught by its content hash', async () => {
  const root = tree();
  try {
    const rel = 'shared/a.ts';
    const file = join(root, rel);
    const pin = () => utimesSync(file, 1_700_000_000, 1_700_000_000); // whole seconds: restorable exactly
    const write = (text: string) => {
      writeFileSync(file, text);
      pin();
    };
    write(`// ${rel}\nexport const x = 1;\n`);
    await stamp(root);
    write('// SHARED/A.TS\nexport const x = 1;\n'); // same length, same mtime
    assert.equal(await distIsCurrent(root), true, 'size and mtime alone cannot see it: why racy files carry a hash');

    write(`// ${rel}\nexport const x = 1;\n`);
    await stamp(root, [rel]);
    assert.equal(await distIsCurrent(root), true);
    write('// SHARED/A.TS\nexport const x = 1;\n');
    assert.equal(await distIsCurrent(root), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
