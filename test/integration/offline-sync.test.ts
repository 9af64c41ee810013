// Desired state across faults: changes made while a node is cut off all arrive after heal; an
// agent killed in the middle of a sync batch never holds half of it; a hub restart restarts no
// instance and brings every session back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const app = (name: string, unit: string, args: string[]) => ({
  apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name },
  spec: { units: { names: [unit] }, template: { processes: [{ command: 'sleep', args }], terminationGracePeriodSeconds: 1 } },
});

/** The agent's cache, read-only, as (kind/name -> json). */
function cached(dir: string): Map<string, { spec?: { template?: { processes?: { args?: string[] }[] } }; metadata: { labels?: Record<string, string> } }> {
  const out = new Map<string, { spec?: { template?: { processes?: { args?: string[] }[] } }; metadata: { labels?: Record<string, string> } }>();
  if (!existsSync(join(dir, 'cache.db'))) return out;
  const db = new Database(join(dir, 'cache.db'), { readonly: true });
  try {
    for (const r of db.prepare('SELECT kind, name, json FROM desired_objects').all() as { kind: string; name: string; json: string }[]) out.set(`${r.kind}/${r.name}`, JSON.parse(r.json));
  } catch {
    // tables not created yet
  } finally {
    db.close();
  }
  return out;
}

describe('desired state across faults', () => {
  const cluster = new TestCluster();
  const pids = new Set<number>();
  const dir = (n: string) => join(cluster.dir, 'agents', n);
  after(async () => {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  });
  before(async () => {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'p' }, spec: {} });
  });

  test('every change made while a node is cut off arrives after heal (new, changed, deleted app; changed unit)', async () => {
    const agent = await cluster.startAgent('p1', 'p');
    await cluster.api('POST', `${API}/edgeapps`, app('changed', 'p', ['1000']));
    await cluster.api('POST', `${API}/edgeapps`, app('deleted', 'p', ['1000']));
    await waitFor(() => cached(dir('p1')).has('Instance/deleted-p-0') && cached(dir('p1')).has('Instance/changed-p-0'), { timeoutMs: 15_000, message: 'initial sync' });
    agent.child.kill('SIGSTOP');
    try {
      await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/p1`)).status?.phase === 'Disconnected', { timeoutMs: 15_000, message: 'cut off' });
      await cluster.api('POST', `${API}/edgeapps`, app('added', 'p', ['1000']));
      await cluster.api('PUT', `${API}/edgeapps/changed`, app('changed', 'p', ['2000']));
      await cluster.api('DELETE', `${API}/edgeapps/deleted`);
      await cluster.api('PUT', `${API}/nodeunits/p`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'p', labels: { zone: 'west' } }, spec: {} });
    } finally {
      agent.child.kill('SIGCONT');
    }
    await waitFor(() => {
      const c = cached(dir('p1'));
      return c.has('Instance/added-p-0') && !c.has('Instance/deleted-p-0') && !c.has('EdgeApp/deleted') &&
        c.get('Instance/changed-p-0')?.spec?.template?.processes?.[0]?.args?.[0] === '2000' && c.get('NodeUnit/p')?.metadata.labels?.zone === 'west';
    }, { timeoutMs: 20_000, message: 'all four changes in the cache after heal' });
    const inst = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/changed-p-0`);
      return i.status?.templateHash === i.spec.templateHash && i.status.phase === 'Running' ? i : undefined;
    }, { timeoutMs: 20_000, message: 'the changed app runs its new template' });
    pids.add(inst.status?.pid ?? 0);
    await agent.kill();
  });

  test('an agent SIGKILLed during a sync batch holds all of it or none of it, and converges after restart', async () => {
    // 40 apps for a fresh node: its first sync is one batch of 40 EdgeApps.
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'q' }, spec: {} });
    for (let i = 0; i < 40; i++) await cluster.api('POST', `${API}/edgeapps`, { ...app(`batch-${i}`, 'q', ['1000']), spec: { ...app(`batch-${i}`, 'q', ['1000']).spec, replicasPerUnit: 0 } });
    const seen = new Set<number>();
    let agent = await cluster.startAgent('q1', 'q');
    for (const delayMs of [0, 20, 60, 120, 250]) {
      await agent.kill();
      const apps = [...cached(dir('q1')).keys()].filter((k) => k.startsWith('EdgeApp/batch-')).length;
      seen.add(apps);
      assert.ok(apps === 0 || apps === 40, `after a kill the cache holds ${apps} of the batch's 40 apps`);
      agent = await cluster.restartAgent('q1', cluster.requireHub().url);
      await new Promise((r) => setTimeout(r, delayMs));
    }
    await waitFor(() => [...cached(dir('q1')).keys()].filter((k) => k.startsWith('EdgeApp/batch-')).length === 40, { timeoutMs: 15_000, message: 'converged' });
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/q1`)).status?.phase === 'Ready', { timeoutMs: 15_000, message: 'q1 Ready' });
    console.log(`# sync batch kill test: cache held ${[...seen].join(' or ')} of 40 apps at the kills`);
    await agent.kill();
  });

  test('a hub restart restarts no instance and brings every session back', async () => {
    const agent = await cluster.restartAgent('p1', cluster.requireHub().url);
    const before = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/changed-p-0`);
      return i.status?.phase === 'Running' && (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/p1`)).status?.phase === 'Ready' ? i : undefined;
    }, { timeoutMs: 20_000, message: 'running' });
    const port = cluster.hubPort();
    await cluster.requireHub().kill();
    await cluster.startHub(port);
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/p1`)).status?.phase === 'Ready' && (await (await fetch(`${agent.localApi}/v1/status`)).json() as { cloud: string }).cloud.startsWith('connected'), { timeoutMs: 20_000, message: 'session back' });
    await new Promise((r) => setTimeout(r, 1500));
    const after = await cluster.api<Instance>('GET', `${API}/instances/changed-p-0`);
    assert.equal(after.status?.pid, before.status?.pid, 'same process');
    assert.equal(after.status?.restarts, before.status?.restarts, 'no restart');
  });
});
