import { parseAllDocuments, stringify } from 'yaml';
import { OutpostError } from './errors.js';

/** Upper bound on one manifest stream: a YAML bomb must not take a hub or CLI down. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses a multi-document YAML (or JSON) stream into plain values. Empty documents are skipped.
 * Throws INVALID_YAML naming the document number, line and column of the first problem.
 */
export function parseManifests(text: string, source = 'input'): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
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
  return stringify(value, { lineWidth: 0 });
}
