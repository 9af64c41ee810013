import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TObject } from '@sinclair/typebox';
import { OutpostError, type FieldError } from '../errors.js';
import { API_VERSION, type AnyObject } from './meta.js';
import { KINDS, isKindName, kindInfo, type KindName } from './kinds.js';
import { semanticProblems } from './semantic.js';

const MAX_FIELD_ERRORS = 20;
// Each kind's check is compiled on its first use: a process that validates few kinds (an agent
// validates none) does not hold the generated code of all of them (issue 7, agent footprint).
const compiled = new Map<string, TypeCheck<TObject>>();
function checkOf(kind: string): TypeCheck<TObject> | undefined {
  let check = compiled.get(kind);
  if (!check) {
    const info = KINDS.find((k) => k.kind === kind);
    if (!info) return undefined;
    check = TypeCompiler.Compile(info.schema);
    compiled.set(kind, check);
  }
  return check;
}

/** TypeBox's wording, made specific where it is vague. */
function readableMessage(message: string, schema: unknown): string {
  const anyOf = (schema as { anyOf?: { const?: unknown }[] }).anyOf;
  if (anyOf && anyOf.every((s) => s.const !== undefined)) return `expected one of: ${anyOf.map((s) => String(s.const)).join(', ')}`;
  if (message === 'Unexpected property') return 'not allowed here (an unknown field, or a key that breaks the naming rules)';
  return message;
}

/** Field errors of `value` against `check`, deduplicated by path (unions report once per branch). */
export function fieldErrors(check: TypeCheck<TObject>, value: unknown): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of check.Errors(value)) {
    const path = e.path === '' ? '/' : e.path;
    if (seen.has(path)) continue;
    seen.add(path);
    out.push({ path, message: readableMessage(e.message, e.schema) });
    if (out.length >= MAX_FIELD_ERRORS) break;
  }
  return out;
}

/**
 * Validates an object of any registered kind. Throws INVALID (422) naming every failing field,
 * UNKNOWN_KIND (404) for a kind Outpost does not have, BAD_REQUEST when it is not an object.
 */
export function validateObject(value: unknown): AnyObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OutpostError('BAD_REQUEST', 'expected an object with apiVersion, kind, metadata and spec');
  }
  const { kind, apiVersion } = value as Record<string, unknown>;
  if (!isKindName(kind)) {
    throw new OutpostError('UNKNOWN_KIND', `unknown kind ${JSON.stringify(kind)}; known kinds: ${KINDS.map((k) => k.kind).join(', ')}`);
  }
  if (apiVersion !== API_VERSION) {
    throw new OutpostError('INVALID', `${kind}: apiVersion must be ${API_VERSION}`, {
      fields: [{ path: '/apiVersion', message: `expected ${API_VERSION}, got ${JSON.stringify(apiVersion)}` }],
    });
  }
  const check = checkOf(kind);
  if (!check) throw new OutpostError('UNKNOWN_KIND', `unknown kind ${kind}`);
  if (!check.Check(value)) {
    const fields = fieldErrors(check, value);
    const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
    const first = fields[0];
    throw new OutpostError(
      'INVALID',
      `${kind}${typeof name === 'string' ? ` "${name}"` : ''} is invalid: ${first ? `${first.path}: ${first.message}` : 'schema mismatch'}`,
      { fields },
    );
  }
  const problems = semanticProblems(value as unknown as AnyObject);
  if (problems.length > 0) {
    const name = (value as { metadata: { name: string } }).metadata.name;
    throw new OutpostError('INVALID', `${kind} "${name}" is invalid: ${problems[0]!.path}: ${problems[0]!.message}`, { fields: problems.slice(0, MAX_FIELD_ERRORS) });
  }
  return value as unknown as AnyObject;
}

export function validateKind<T extends AnyObject>(kind: KindName, value: unknown): T {
  const obj = validateObject(value);
  if (obj.kind !== kind) throw new OutpostError('INVALID', `expected kind ${kindInfo(kind).kind}, got ${obj.kind}`);
  return obj as T;
}
