// `npm run crds`: writes deploy/crds/<plural>.yaml from the TypeBox schemas (cloud-hub/kube/crd-gen.ts).
// Refuses to write a CRD whose schema breaks a structural rule checked offline.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crdFileName, generateCrds, renderCrdFile } from '../cloud-hub/kube/crd-gen.js';
import { structuralProblems } from '../cloud-hub/kube/structural-check.js';

const dir = join(new URL('..', import.meta.url).pathname, 'deploy', 'crds');
const crds = generateCrds();
const problems = crds.flatMap((c) => structuralProblems(c.spec.versions[0]!.schema.openAPIV3Schema).map((p) => `${c.metadata.name}: ${p}`));
if (problems.length > 0) {
  console.error(`not structural:\n${problems.join('\n')}`);
  process.exit(1);
}
mkdirSync(dir, { recursive: true });
const wanted = new Set(crds.map(crdFileName));
// A kind removed from KINDS must not leave its CRD behind.
for (const f of readdirSync(dir)) if (f.endsWith('.yaml') && !wanted.has(f)) rmSync(join(dir, f));
for (const crd of crds) writeFileSync(join(dir, crdFileName(crd)), renderCrdFile(crd));
console.log(`wrote ${crds.length} CRDs to ${dir}`);
