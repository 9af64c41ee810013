import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { hubClusterRules, hubNamespaceRules, type PolicyRule } from '../../cloud-hub/kube/hub-rbac.js';
import { parseManifests } from '../../shared/yaml.js';

const DIR = new URL('../../deploy/hub/', import.meta.url).pathname;
const NAMESPACE = 'outpost-system';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

function manifests(): Manifest[] {
  return readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort().flatMap((f) => parseManifests(readFileSync(`${DIR}${f}`, 'utf8'), f) as Manifest[]);
}

function one(kind: string): Manifest {
  const found = manifests().filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
}

/** Rules as a set of "group/resource verb" triples, so that grouping and order do not matter. */
function grants(rules: PolicyRule[]): string[] {
  return rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res} ${v}`)))).sort();
}

test('every manifest parses, and every namespaced object lives in the hub namespace', () => {
  const all = manifests();
  const kinds = all.map((m) => m.kind).sort();
  assert.deepEqual(kinds, ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
  for (const m of all) {
    if (['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(m.kind)) assert.equal(m.metadata.namespace, undefined, m.kind);
    else assert.equal(m.metadata.namespace, NAMESPACE, `${m.kind} ${m.metadata.name}`);
  }
  // kubectl apply -f deploy/hub/ reads files in name order: the Namespace must come first.
  assert.equal(readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()[0], '00-namespace.yaml');
});

test('RBAC grants exactly what the hub uses: the outpost.dev kinds cluster-wide, Leases and Secrets only in its namespace', () => {
  const clusterRole = one('ClusterRole') as Manifest & { rules: PolicyRule[] };
  const role = one('Role') as Manifest & { rules: PolicyRule[] };
  assert.deepEqual(grants(clusterRole.rules), grants(hubClusterRules()));
  assert.deepEqual(grants(role.rules), grants(hubNamespaceRules()));
  for (const r of [...clusterRole.rules, ...role.rules]) {
    for (const field of [r.apiGroups, r.resources, r.verbs]) assert.ok(!field.includes('*'), `wildcard in ${JSON.stringify(r)}`);
  }
  // The ClusterRole reaches no core or other group: Secrets are granted only by the namespaced Role.
  assert.deepEqual([...new Set(clusterRole.rules.flatMap((r) => r.apiGroups))], ['outpost.dev']);
});

test('the bindings give those roles to the Deployment\'s service account, and nothing else', () => {
  const sa = one('ServiceAccount');
  const deployment = one('Deployment') as Manifest & { spec: { template: { spec: { serviceAccountName: string } } } };
  assert.equal(deployment.spec.template.spec.serviceAccountName, sa.metadata.name);
  for (const [bindingKind, roleKind] of [['ClusterRoleBinding', 'ClusterRole'], ['RoleBinding', 'Role']] as const) {
    const b = one(bindingKind) as Manifest & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
    assert.deepEqual(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: one(roleKind).metadata.name });
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);
  }
});

test('the Deployment runs 2 hardened replicas of `outpost hub --store kubernetes`, probed on /healthz, behind the Service and the PDB', () => {
  type Container = {
    args: string[]; ports: { name: string; containerPort: number }[];
    readinessProbe: { httpGet: { path: string; port: string } }; livenessProbe: { httpGet: { path: string; port: string } };
    resources: { requests: Record<string, string>; limits: Record<string, string> };
    securityContext: { allowPrivilegeEscalation: boolean; readOnlyRootFilesystem: boolean; capabilities: { drop: string[] } };
  };
  const d = one('Deployment') as Manifest & { spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; securityContext: { runAsNonRoot: boolean }; topologySpreadConstraints: unknown[] } } } };
  assert.equal(d.spec.replicas, 2);
  const c = d.spec.template.spec.containers[0]!;
  assert.deepEqual(c.args.slice(0, 3), ['hub', '--store', 'kubernetes']);
  const listen = c.args[c.args.indexOf('--listen') + 1]!;
  const port = c.ports.find((p) => p.name === 'http')!;
  assert.equal(listen, `0.0.0.0:${port.containerPort}`);
  for (const probe of [c.readinessProbe, c.livenessProbe]) assert.deepEqual(probe.httpGet, { path: '/healthz', port: 'http' });
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
  assert.equal(d.spec.template.spec.securityContext.runAsNonRoot, true);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.ok(d.spec.template.spec.topologySpreadConstraints.length > 0);

  const labels = d.spec.selector.matchLabels;
  for (const [k, v] of Object.entries(labels)) assert.equal(d.spec.template.metadata.labels[k], v);
  const svc = one('Service') as Manifest & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] } };
  assert.deepEqual(svc.spec.selector, labels);
  assert.deepEqual(svc.spec.ports.map((p) => p.targetPort), ['http']);
  const pdb = one('PodDisruptionBudget') as Manifest & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
  assert.equal(pdb.spec.minAvailable, 1);
  assert.deepEqual(pdb.spec.selector.matchLabels, labels);
});
