// Every YAML file under examples/ is what the README tells operators to apply: each document must
// parse and pass the same validation the hub applies (schema and semantic checks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { validateObject } from '../../shared/api/index.js';
import { parseManifests } from '../../shared/yaml.js';

const root = resolve(import.meta.dirname, '../../examples');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? yamlFiles(p) : n.endsWith('.yaml') ? [p] : [];
  });
}

for (const file of yamlFiles(root)) {
  test(`examples/${relative(root, file)} is valid`, () => {
    const docs = parseManifests(readFileSync(file, 'utf8'), file);
    assert.ok(docs.length > 0, 'no documents');
    for (const doc of docs) {
      try {
        validateObject(doc);
      } catch (e) {
        assert.fail(`${(e as Error).message} ${JSON.stringify((e as { fields?: unknown }).fields)}`);
      }
    }
  });
}
