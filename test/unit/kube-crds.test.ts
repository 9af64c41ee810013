import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { KINDS, validateObject } from '../../shared/api/index.js';
import { parseManifests } from '../../shared/yaml.js';
import { crdFileName, crdShortNames, generateCrds, renderCrdFile, type CustomResourceDefinition } from '../../cloud-hub/kube/crd-gen.js';
import { toCrdSchema, type CrdSchema } from '../../cloud-hub/kube/crd-schema.js';
import { structuralProblems } from '../../cloud-hub/kube/structural-check.js';
import { exampleOfEveryKind } from '../helpers/kind-examples.js';

const CRD_DIR = new URL('../../deploy/crds/', import.meta.url).pathname;
const schemaOf = (crd: CustomResourceDefinition) => crd.spec.versions[0]!.schema.openAPIV3Schema;

test('deploy/crds holds exactly the generator output, one file per kind (run `npm run crds` after a schema change)', () => {
  const crds = generateCrds();
  const files = readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(files, crds.map(crdFileName).sort());
  for (const crd of crds) {
    assert.equal(readFileSync(`${CRD_DIR}${crdFileName(crd)}`, 'utf8'), renderCrdFile(crd), `${crdFileName(crd)} is stale: run npm run crds`);
    assert.deepEqual(parseManifests(renderCrdFile(crd)), [JSON.parse(JSON.stringify(crd))]);
  }
});

test('every CRD is cluster-scoped <plural>.outpost.dev with a status subresource, category outpost and an Age column', () => {
  const crds = generateCrds();
  assert.deepEqual(crds.map((c) => c.spec.names.kind), KINDS.map((k) => k.kind));
  for (const [i, crd] of crds.entries()) {
    const info = KINDS[i]!;
    assert.equal(crd.metadata.name, `${info.plural}.outpost.dev`);
    assert.equal(crd.spec.scope, 'Cluster');
    assert.equal(crd.spec.group, 'outpost.dev');
    assert.deepEqual(crd.spec.names.categories, ['outpost']);
    assert.equal(crd.spec.versions.length, 1);
    assert.equal(crd.spec.versions[0]!.name, 'v1alpha1');
    assert.deepEqual(crd.spec.versions[0]!.subresources, { status: {} });
    assert.ok(crd.spec.versions[0]!.additionalPrinterColumns.some((c) => c.name === 'Age' && c.jsonPath === '.metadata.creationTimestamp'));
    for (const n of crd.spec.names.shortNames) assert.ok(info.shortNames.includes(n));
  }
});

test('short names that collide with built-in Kubernetes resources or repeat the plural are left out of the CRD', () => {
  const node = KINDS.find((k) => k.kind === 'EdgeNode')!;
  assert.ok(node.shortNames.includes('no'));
  assert.deepEqual(crdShortNames(node).filter((n) => ['no', 'node', 'nodes'].includes(n)), []);
  const instance = KINDS.find((k) => k.kind === 'Instance')!;
  assert.ok(!crdShortNames(instance).includes('instances'));
  // Names of one CRD may not repeat another's in the group (the API server would not accept its names).
  const names = generateCrds().flatMap((c) => [c.spec.names.plural, ...c.spec.names.shortNames]);
  assert.equal(new Set(names).size, names.length, names.join(','));
});

test('every generated schema passes the offline structural rules', () => {
  for (const crd of generateCrds()) assert.deepEqual(structuralProblems(schemaOf(crd)), [], crd.metadata.name);
});

test('the structural check catches what the API server would refuse', () => {
  const bad: CrdSchema = {
    type: 'object',
    properties: {
      metadata: { type: 'object', properties: { labels: { type: 'object' } } },
      untyped: {},
      both: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } },
      junctor: { type: 'string', anyOf: [{ type: 'string' }] },
      ios: { type: 'string', 'x-kubernetes-int-or-string': true },
      badEnum: { type: 'integer', enum: ['x'] },
      list: { type: 'array' },
    },
    required: ['missing'],
  };
  const problems = structuralProblems(bad).join('\n');
  for (const expected of ['.metadata.labels', '.untyped: no type', '.both: properties and additionalProperties', '.junctor.anyOf[0]: type', '.ios: an int-or-string node must not name a type', '.badEnum: enum value', '.list: an array without items', 'required field missing']) {
    assert.ok(problems.includes(expected), `expected ${expected} in:\n${problems}`);
  }
});

test('printer columns point at fields the schema has', () => {
  for (const crd of generateCrds()) {
    for (const col of crd.spec.versions[0]!.additionalPrinterColumns) {
      if (col.jsonPath.startsWith('.metadata.')) continue;
      let node: CrdSchema | undefined = schemaOf(crd);
      for (const seg of col.jsonPath.slice(1).split('.')) {
        const [field, index] = seg.split('[');
        node = node?.properties?.[field!];
        if (index !== undefined) node = node?.items;
      }
      assert.ok(node, `${crd.metadata.name}: column ${col.name} at ${col.jsonPath} has no field`);
      if (col.type !== 'date' && col.jsonPath.indexOf('[*]') < 0) assert.equal(node.type, col.type, `${crd.metadata.name}: column ${col.name}`);
    }
  }
});

test('TypeBox constructs become their structural form', () => {
  const s = toCrdSchema(Type.Object({
    phase: Type.Union([Type.Literal('A'), Type.Literal('B')], { description: 'the phase' }),
    after: Type.Optional(Type.Union([Type.String({ pattern: '^[0-9]+s$' }), Type.Null()])),
    surge: Type.Union([Type.Integer({ minimum: 0, maximum: 10 }), Type.String({ pattern: '^[0-9]+%$' })]),
    env: Type.Record(Type.String({ pattern: '^[A-Z]+$' }), Type.String({ maxLength: 5 }), { additionalProperties: false }),
    free: Type.Record(Type.String(), Type.Integer()),
    any: Type.Unknown(),
    value: Type.Union([Type.Number(), Type.Boolean(), Type.String()]),
  }, { additionalProperties: false }));
  assert.deepEqual(s.required, ['phase', 'surge', 'env', 'free', 'any', 'value']);
  assert.deepEqual(s.properties!.phase, { type: 'string', description: 'the phase', enum: ['A', 'B'] });
  assert.deepEqual(s.properties!.after, { type: 'string', pattern: '^[0-9]+s$', nullable: true });
  assert.deepEqual(s.properties!.surge, { minimum: 0, maximum: 10, pattern: '^[0-9]+%$', 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] });
  assert.deepEqual(s.properties!.env, { type: 'object', additionalProperties: { type: 'string', maxLength: 5 }, description: 'Keys match ^[A-Z]+$' });
  assert.deepEqual(s.properties!.free, { type: 'object', additionalProperties: { type: 'integer' } });
  assert.deepEqual(s.properties!.any, { 'x-kubernetes-preserve-unknown-fields': true });
  assert.equal(s.properties!.value!['x-kubernetes-preserve-unknown-fields'], true);
  assert.deepEqual(structuralProblems(s), []);
});

test('a TypeBox keyword the generator does not know is an error, not a silently wider schema', () => {
  assert.throws(() => toCrdSchema(Type.Object({ a: Type.String({ contentEncoding: 'base64' }) })), /contentEncoding/);
  assert.throws(() => toCrdSchema(Type.Object({ a: Type.Array(Type.String(), { uniqueItems: true }) })), /uniqueItems/);
});

test('documented fields carry their description into the CRD (kubectl explain)', () => {
  const app = schemaOf(generateCrds().find((c) => c.spec.names.kind === 'EdgeApp')!);
  const spec = app.properties!.spec!;
  for (const field of ['template', 'units', 'replicasPerUnit', 'overrides', 'rollout']) {
    assert.ok(spec.properties![field]!.description, `EdgeApp spec.${field} has no description`);
  }
  assert.ok(spec.description, 'EdgeApp spec has no description');
  // A field's own text wins over the description of the shared schema it uses.
  assert.match(spec.properties!.service!.description!, /^Registers every instance/);
});

test('the examples used against a real API server cover every kind and pass the hub validation', () => {
  const examples = exampleOfEveryKind();
  assert.deepEqual(examples.map((o) => o.kind).sort(), KINDS.map((k) => k.kind).sort());
  for (const o of examples) assert.doesNotThrow(() => validateObject(o), o.kind);
});
