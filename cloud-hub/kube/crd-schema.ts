import type { TSchema } from '@sinclair/typebox';

/**
 * The subset of OpenAPI v3 (apiextensions.k8s.io/v1 JSONSchemaProps) a generated CRD schema uses.
 * Every node is structural: it has a `type`, or is an int-or-string or preserve-unknown-fields node.
 */
export interface CrdSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, CrdSchema>;
  required?: string[];
  additionalProperties?: CrdSchema;
  items?: CrdSchema;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  anyOf?: CrdSchema[];
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-preserve-unknown-fields'?: true;
}

type Json = Record<string, unknown>;

/** Keywords copied unchanged: value validations the CRD schema language shares with TypeBox. */
const COPIED = ['description', 'pattern', 'format', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems', 'minProperties', 'maxProperties'] as const;
/** TypeBox keywords that carry no meaning for the API server. */
const IGNORED = new Set(['$id', 'title', 'examples', 'default']);
/** A TypeBox record whose keys are any string. */
const ANY_KEY = '^(.*)$';

/**
 * Converts a TypeBox schema (JSON Schema) into a structural CRD schema that accepts what the hub's
 * validation accepts, as closely as the CRD schema language allows. Where it cannot say the same
 * thing, the CRD schema is wider, never narrower (a stored object must always stay readable):
 * - `additionalProperties: false` objects: the API server prunes unknown fields (or refuses them
 *   with kubectl's default strict field validation) instead of refusing them;
 * - record key patterns (label keys, env names) are only described, not checked;
 * - a union of number, boolean and string (a twin property value) accepts any JSON value.
 * Throws on a keyword it does not know, so that a new TypeBox construct is never silently lost.
 */
export function toCrdSchema(schema: TSchema): CrdSchema {
  return convert(JSON.parse(JSON.stringify(schema)) as Json, '');
}

function convert(s: Json, path: string): CrdSchema {
  if (Array.isArray(s.anyOf)) return convertUnion(s, s.anyOf as Json[], path);
  if (s.const !== undefined) return { type: jsonType(s, path), ...copied(s), enum: [s.const] };
  if (s.type === undefined) {
    checkKnown(s, ['description'], path);
    return { ...copied(s), 'x-kubernetes-preserve-unknown-fields': true };
  }
  switch (s.type) {
    case 'object':
      return convertObject(s, path);
    case 'array': {
      checkKnown(s, ['type', 'items', ...COPIED], path);
      return { type: 'array', ...copied(s), items: convert(s.items as Json, `${path}[]`) };
    }
    case 'string':
    case 'integer':
    case 'number':
    case 'boolean':
      checkKnown(s, ['type', 'enum', ...COPIED], path);
      return { type: s.type as CrdSchema['type'], ...copied(s), ...(Array.isArray(s.enum) ? { enum: s.enum } : {}) };
    default:
      throw new Error(`${path || '/'}: JSON Schema type ${JSON.stringify(s.type)} has no CRD equivalent`);
  }
}

function convertObject(s: Json, path: string): CrdSchema {
  checkKnown(s, ['type', 'properties', 'required', 'additionalProperties', 'patternProperties', ...COPIED], path);
  const out: CrdSchema = { type: 'object', ...copied(s) };
  const props = s.properties as Record<string, Json> | undefined;
  const patterns = s.patternProperties as Record<string, Json> | undefined;
  if (props && patterns) throw new Error(`${path || '/'}: properties and patternProperties together have no structural form`);
  if (props) {
    out.properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, convert(v, `${path}.${k}`)]));
    const required = (s.required as string[] | undefined) ?? [];
    if (required.length > 0) out.required = [...required];
  } else if (patterns) {
    const entries = Object.entries(patterns);
    if (entries.length !== 1) throw new Error(`${path || '/'}: a record with ${entries.length} key patterns has no structural form`);
    const [keyPattern, value] = entries[0]!;
    out.additionalProperties = convert(value, `${path}[*]`);
    // No CEL rule over the keys: a map's size and key length are unbounded in the schema, so the
    // API server's cost estimate of `self.all(k, k.matches(...))` exceeds its budget and it would
    // refuse the CRD. The rule is stated for kubectl explain instead; the hub checks it.
    if (keyPattern !== ANY_KEY) out.description = `${out.description ? `${out.description} ` : ''}Keys match ${keyPattern}`;
  } else if (typeof s.additionalProperties === 'object') {
    out.additionalProperties = convert(s.additionalProperties as Json, `${path}[*]`);
  }
  return out;
}

function convertUnion(s: Json, branches: Json[], path: string): CrdSchema {
  checkKnown(s, ['anyOf', 'description'], path);
  const description = typeof s.description === 'string' ? { description: s.description } : {};
  // A union of literals of one type: an enum.
  if (branches.every((b) => b.const !== undefined)) {
    const types = new Set(branches.map((b) => jsonType(b, path)));
    if (types.size !== 1) throw new Error(`${path || '/'}: literals of several types have no structural form`);
    return { type: [...types][0]!, ...description, enum: branches.map((b) => b.const) };
  }
  const nonNull = branches.filter((b) => b.type !== 'null');
  if (nonNull.length === 1 && branches.length === 2) {
    const inner = convert(nonNull[0]!, path);
    return { ...inner, ...description, nullable: true };
  }
  const byType = new Map(branches.map((b) => [b.type, b]));
  if (branches.length === 2 && byType.has('integer') && byType.has('string')) {
    const int = convert(byType.get('integer')!, path);
    const str = convert(byType.get('string')!, path);
    // The API server allows only bare `type` in the two anyOf branches; a value validation at the
    // node applies to the values of its own type (minimum to integers, pattern to strings).
    const { type: _i, ...intRules } = int;
    const { type: _s, ...strRules } = str;
    return { ...intRules, ...strRules, ...description, 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
  }
  const types = branches.map((b) => String(b.type)).join(' | ');
  return { description: typeof s.description === 'string' ? s.description : `one of: ${types}`, 'x-kubernetes-preserve-unknown-fields': true };
}

function jsonType(s: Json, path: string): NonNullable<CrdSchema['type']> {
  if (s.type !== undefined) return s.type as NonNullable<CrdSchema['type']>;
  switch (typeof s.const) {
    case 'string': return 'string';
    case 'boolean': return 'boolean';
    case 'number': return Number.isInteger(s.const) ? 'integer' : 'number';
    default: throw new Error(`${path || '/'}: literal ${JSON.stringify(s.const)} has no CRD type`);
  }
}

function copied(s: Json): Partial<CrdSchema> {
  const out: Record<string, unknown> = {};
  for (const k of COPIED) if (s[k] !== undefined) out[k] = s[k];
  return out as Partial<CrdSchema>;
}

function checkKnown(s: Json, known: readonly string[], path: string): void {
  for (const k of Object.keys(s)) {
    if (!known.includes(k) && !IGNORED.has(k) && !(k === 'additionalProperties' && s[k] === false)) {
      throw new Error(`${path || '/'}: TypeBox keyword ${k} is not converted to the CRD schema`);
    }
  }
}
