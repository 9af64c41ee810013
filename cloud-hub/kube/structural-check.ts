import type { CrdSchema } from './crd-schema.js';

/** Keywords a CRD schema may not use at all (apiextensions.k8s.io/v1 refuses them). */
const FORBIDDEN = ['$ref', 'patternProperties', 'definitions', 'dependencies', 'additionalItems', 'uniqueItems', 'id', '$schema', 'oneOf', 'allOf', 'not'];
/** Keywords the rules forbid inside anyOf/allOf/oneOf/not branches. */
const NOT_IN_JUNCTORS = ['type', 'description', 'default', 'additionalProperties', 'nullable', 'properties', 'items'];
const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

/**
 * The structural-schema rules of Kubernetes that can be checked offline (the API server checks
 * the same and more; see "Specifying a structural schema" in the Kubernetes CRD documentation):
 * every node names its type unless it is int-or-string or preserve-unknown-fields; properties
 * and additionalProperties never together; logical junctors carry only value validations;
 * the root's metadata restricts nothing but name and generateName; enums match their type.
 * Returns one message per problem, each starting with the node's path.
 */
export function structuralProblems(root: CrdSchema): string[] {
  const out: string[] = [];
  visit(root as Record<string, unknown>, '', out, true);
  const metadata = root.properties?.metadata as Record<string, unknown> | undefined;
  if (metadata) {
    if (metadata.type !== 'object') out.push('.metadata: type must be object');
    for (const k of Object.keys((metadata.properties as object | undefined) ?? {})) {
      if (k !== 'name' && k !== 'generateName') out.push(`.metadata.${k}: only name and generateName may be restricted at the root`);
    }
    for (const k of Object.keys(metadata)) {
      if (k !== 'type' && k !== 'properties') out.push(`.metadata: ${k} is not allowed at the root's metadata`);
    }
  }
  return out;
}

function visit(s: Record<string, unknown>, path: string, out: string[], isRoot = false): void {
  const where = path || '.';
  for (const k of FORBIDDEN) if (k in s) out.push(`${where}: ${k} is not allowed in a CRD schema`);
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  if (s.type === undefined) {
    if (!intOrString && !preserve) out.push(`${where}: no type (only int-or-string and preserve-unknown-fields nodes may omit it)`);
  } else if (!TYPES.has(s.type as string)) {
    out.push(`${where}: unknown type ${JSON.stringify(s.type)}`);
  }
  if (isRoot && s.type !== 'object') out.push('.: the root must be of type object');
  if (intOrString) {
    if (s.type !== undefined) out.push(`${where}: an int-or-string node must not name a type`);
    const anyOf = s.anyOf as Record<string, unknown>[] | undefined;
    if (anyOf && JSON.stringify(anyOf) !== JSON.stringify([{ type: 'integer' }, { type: 'string' }])) {
      out.push(`${where}: an int-or-string node's anyOf must be exactly [{type: integer}, {type: string}]`);
    }
  } else if (Array.isArray(s.anyOf)) {
    (s.anyOf as Record<string, unknown>[]).forEach((b, i) => {
      for (const k of NOT_IN_JUNCTORS) if (k in b) out.push(`${where}.anyOf[${i}]: ${k} is not allowed inside a logical junctor`);
    });
  }
  if (s.properties !== undefined && s.additionalProperties !== undefined) out.push(`${where}: properties and additionalProperties together`);
  if (typeof s.additionalProperties === 'boolean') out.push(`${where}: additionalProperties must be a schema, not a boolean`);
  if ((s.properties !== undefined || s.additionalProperties !== undefined || s.required !== undefined) && s.type !== 'object') {
    out.push(`${where}: properties, additionalProperties or required on a node that is not an object`);
  }
  if (s.items !== undefined && s.type !== 'array') out.push(`${where}: items on a node that is not an array`);
  if (s.type === 'array' && s.items === undefined) out.push(`${where}: an array without items`);
  if (Array.isArray(s.enum)) {
    for (const v of s.enum) if (!matchesType(v, s.type, s.nullable === true)) out.push(`${where}: enum value ${JSON.stringify(v)} is not of type ${String(s.type)}`);
  }
  const required = (s.required as string[] | undefined) ?? [];
  const props = (s.properties as Record<string, Record<string, unknown>> | undefined) ?? {};
  for (const r of required) if (!(r in props)) out.push(`${where}: required field ${r} is not among the properties`);
  for (const [k, v] of Object.entries(props)) visit(v, `${path}.${k}`, out);
  if (typeof s.additionalProperties === 'object' && s.additionalProperties !== null) visit(s.additionalProperties as Record<string, unknown>, `${path}[*]`, out);
  if (typeof s.items === 'object' && s.items !== null) visit(s.items as Record<string, unknown>, `${path}[]`, out);
}

function matchesType(v: unknown, type: unknown, nullable: boolean): boolean {
  if (v === null) return nullable;
  switch (type) {
    case 'string': return typeof v === 'string';
    case 'integer': return Number.isInteger(v);
    case 'number': return typeof v === 'number';
    case 'boolean': return typeof v === 'boolean';
    default: return false;
  }
}
