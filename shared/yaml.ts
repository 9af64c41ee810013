import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { OutpostError } from './errors.js';

// The yaml library (~280 KB of source) is loaded on first use: a long-running agent, which imports
// the CLI's modules but never parses YAML, does not hold it (issue 7, agent footprint).
let yamlLib: typeof Yaml | undefined;
const yaml = (): typeof Yaml => (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof Yaml);

/** Upper bound on one manifest stream: a YAML bomb must not take a hub or CLI down. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses a multi-document YAML (or JSON) stream into plain values. Empty documents are skipped.
 * Throws INVALID_YAML naming the document number, line and column of the first problem.
 */
export function parseManifests(text: string, source = 'input'): unknown[] {
  const docs = yaml().parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const out: unknown[] = [];
  let index = 0;
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    index++;
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const where = pos ? ` line ${pos.line}, column ${pos.col}` : '';
      throw new OutpostError('INVALID_YAML', `${source}: document ${index}${where}: ${err.message.split('\n')[0]}`);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (cause) {
      throw new OutpostError('INVALID_YAML', `${source}: document ${index}: ${(cause as Error).message}`, { cause });
    }
    if (value === null || value === undefined) continue;
    // A `kind: List` (as `get -o yaml` of several objects prints) is flattened into its items.
    if (typeof value === 'object' && !Array.isArray(value) && Array.isArray((value as { items?: unknown }).items) && (value as { kind?: unknown }).kind === 'List') {
      out.push(...(value as { items: unknown[] }).items);
    } else {
      out.push(value);
    }
  }
  return out;
}

export function toYaml(value: unknown): string {
  return yaml().stringify(value, { lineWidth: 0 });
}
