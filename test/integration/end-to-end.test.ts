// The first complete path, with real processes: operator YAML -> hub -> agent -> process on the
// edge node, and status back. Also the agent-restart and offline-reboot guarantees.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeApp, EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, pidAlive } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
// Every instance of this file carries the marker in its argv, so the OS can count them.
const marker = `outpost-e2e-${randomBytes(4).toString('hex')}`;

function appYaml(name: string, unit: string, greeting: string): string {
  return `apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata:
  name: ${name}
spec:
  units:
    names: [${unit}]
  replicasPerUnit: 1
  template:
    processes:
      - command: sh
        args: ["-c", "echo \\"start $GREETING\\"; while true; do sleep 1; done", "${marker}-${name}"]
        env:
          GREETING: ${greeting}
    terminationGracePeriodSeconds: 2
`;
}

/** Pids of live processes whose argv holds the marker of `app`. */
function markedPids(app: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', `${marker}-${app}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('end to end with real processes', () => {
  const cluster = new TestCluster();
  let instance = (name: string) => cluster.api<Instance>('GET', `${API}/instances/${name}`);

  before(async () => {
    await cluster.startHub();
    const units = `apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-a}
spec: {}
---
apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-b}
spec: {}
`;
    const applied = cluster.cli(['apply', '-f', '-'], units);
    assert.equal(applied.code, 0, applied.stderr);
    await cluster.startAgent('node-a', 'site-a');
    await cluster.startAgent('node-b', 'site-b');
    await waitFor(async () => {
      const nodes = await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`);
      return nodes.items.filter((n) => n.status?.phase === 'Ready').length === 2;
    }, { timeoutMs: 20_000, message: 'both nodes Ready' });
    instance = (name) => cluster.api<Instance>('GET', `${API}/instances/${name}`);
  });

  after(async () => {
    await cluster.cleanup();
    for (const app of ['web', 'cam', 'outbox']) for (const pid of markedPids(app)) killGroup(pid);
  });

  test('apply runs the process on the unit\'s node only; env change replaces it; delete stops it', async () => {
    const file = join(cluster.dir, 'web.yaml');
    writeFileSync(file, appYaml('web', 'site-a', 'one'));
    const out = cluster.cli(['apply', '-f', file]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /edgeapp\/web created/);

    const first = await waitFor(async () => {
      const i = await instance('web-site-a-0');
      return i.status?.phase === 'Running' && i.status.pid ? i : undefined;
    }, { timeoutMs: 20_000, message: 'web running' });
    assert.equal(first.spec.node, 'node-a');
    assert.ok(first.status?.pid && pidAlive(first.status.pid), 'the reported pid is a live process');
    assert.deepEqual(markedPids('web'), [first.status?.pid], 'exactly one process, and it is the reported one');
    const onB = await cluster.api<{ items: Instance[] }>('GET', `${API}/instances?fieldSelector=spec.node=node-b`);
    assert.equal(onB.items.length, 0, 'nothing placed on the other unit\'s node');

    await waitFor(() => cluster.cli(['get', 'apps']).stdout.includes('site-a 1/1'), { timeoutMs: 15_000, message: 'get apps shows 1/1' });
    const got = cluster.cli(['get', 'nodes', '-o', 'json']);
    assert.equal(got.code, 0, got.stderr);
    const json = JSON.parse(got.stdout) as { items: EdgeNode[] };
    assert.deepEqual(json.items.map((n) => [n.metadata.name, n.status?.phase]).sort(), [['node-a', 'Ready'], ['node-b', 'Ready']]);

    writeFileSync(file, appYaml('web', 'site-a', 'two'));
    assert.match(cluster.cli(['apply', '-f', file]).stdout, /edgeapp\/web configured/);
    const second = await waitFor(async () => {
      const i = await instance('web-site-a-0');
      return i.status?.phase === 'Running' && i.status.pid && i.status.pid !== first.status?.pid && i.status.templateHash === i.spec.templateHash ? i : undefined;
    }, { timeoutMs: 20_000, message: 'web replaced' });
    assert.equal(pidAlive(first.status?.pid ?? 0), false, 'the old process is gone');
    assert.deepEqual(markedPids('web'), [second.status?.pid]);
    const environ = execFileSync('cat', [`/proc/${second.status?.pid}/environ`], { encoding: 'utf8' });
    assert.match(environ, /GREETING=two/);
    assert.match(cluster.cli(['apply', '-f', file]).stdout, /edgeapp\/web unchanged/);

    const del = cluster.cli(['delete', 'app', 'web']);
    assert.equal(del.code, 0, del.stderr);
    await waitFor(() => markedPids('web').length === 0, { timeoutMs: 15_000, message: 'web process gone' });
    await waitFor(async () => (await cluster.fetch('GET', `${API}/instances/web-site-a-0`)).status === 404, { message: 'instance object deleted' });
  });

  test('kill -9 of the agent keeps its instances; the restarted agent re-adopts them', async () => {
    cluster.cli(['apply', '-f', '-'], appYaml('cam', 'site-b', 'rec'));
    const running = await waitFor(async () => {
      const i = await instance('cam-site-b-0');
      return i.status?.phase === 'Running' && i.status.pid ? i : undefined;
    }, { timeoutMs: 20_000, message: 'cam running' });
    const pid = running.status?.pid ?? 0;

    const agents = await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`);
    assert.equal(agents.items.length, 2);
    // Find and SIGKILL the agent process of this cluster's node-b only (other test files run a node-b too).
    const agentPid = Number(execFileSync('pgrep', ['-f', `agent.*--name node-b --data ${join(cluster.dir, 'agents', 'node-b')}`], { encoding: 'utf8' }).trim().split('\n')[0]);
    process.kill(agentPid, 'SIGKILL');
    await waitFor(() => !pidAlive(agentPid), { message: 'agent dead' });
    assert.ok(pidAlive(pid), 'the instance outlives its agent');
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/node-b`)).status?.phase === 'Disconnected', { timeoutMs: 15_000, message: 'node-b Disconnected' });
    const kept = await instance('cam-site-b-0');
    assert.equal(kept.spec.node, 'node-b', 'a disconnected node keeps its instances');

    const hub = cluster.requireHub();
    const restarted = await cluster.restartAgent('node-b', hub.url);
    const status = await waitFor(async () => {
      const s = (await (await fetch(`${restarted.localApi}/status`)).json()) as { instances: Record<string, { pid?: number; phase: string }> };
      return s.instances['cam-site-b-0']?.phase === 'Running' ? s : undefined;
    }, { timeoutMs: 15_000, message: 'agent sees cam' });
    assert.equal(status.instances['cam-site-b-0']?.pid, pid, 'same pid: re-adopted, not restarted');
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/node-b`)).status?.phase === 'Ready', { timeoutMs: 15_000, message: 'node-b Ready again' });
    assert.deepEqual(markedPids('cam'), [pid], 'no duplicate started');
    assert.equal((await instance('cam-site-b-0')).status?.pid, pid);
  });

  test('statuses produced while the hub is down reach it after it returns, none twice', async () => {
    cluster.cli(['apply', '-f', '-'], appYaml('outbox', 'site-a', 'x'));
    const running = await waitFor(async () => {
      const i = await instance('outbox-site-a-0');
      return i.status?.phase === 'Running' && i.status.pid ? i : undefined;
    }, { timeoutMs: 20_000, message: 'outbox app running' });
    const hub = cluster.requireHub();
    const port = cluster.hubPort();
    await hub.kill();
    // While the hub is down the instance crashes twice: the agent restarts it and queues statuses and events.
    let pid = running.status?.pid ?? 0;
    for (let crash = 1; crash <= 2; crash++) {
      killGroup(pid);
      pid = await waitFor(() => markedPids('outbox').find((p) => p !== pid), { timeoutMs: 15_000, message: `restart ${crash}` });
    }
    await cluster.startHub(port);
    const back = await waitFor(async () => {
      const i = await instance('outbox-site-a-0');
      return i.status?.pid === pid && i.status.restarts === 2 ? i : undefined;
    }, { timeoutMs: 20_000, message: 'latest status after hub return' });
    assert.equal(back.status?.phase, 'Running');
    const events = await cluster.api<{ items: { node: string; seq: number; reason: string; object: { name: string } }[] }>('GET', `${API}/events?object=outbox-site-a-0`);
    const seqs = events.items.map((e) => `${e.node}/${e.seq}`);
    assert.equal(new Set(seqs).size, seqs.length, 'no event stored twice');
    const exits = events.items.filter((e) => e.reason === 'Exited');
    assert.equal(exits.length, 2, `two exits recorded: ${JSON.stringify(events.items.map((e) => e.reason))}`);
  });

  test('reboot while offline: agent and instances killed, hub gone, the agent alone brings the instance back', async () => {
    const inst = await instance('cam-site-b-0');
    const oldPid = inst.status?.pid ?? 0;
    const agentPid = Number(execFileSync('pgrep', ['-f', `agent.*--name node-b --data ${join(cluster.dir, 'agents', 'node-b')}`], { encoding: 'utf8' }).trim().split('\n')[0]);
    const hubUrl = cluster.requireHub().url;
    process.kill(agentPid, 'SIGKILL');
    killGroup(oldPid);
    await cluster.requireHub().kill();
    await waitFor(() => !pidAlive(oldPid) && !pidAlive(agentPid), { message: 'power cut' });

    const agent = await cluster.restartAgent('node-b', hubUrl);
    const status = await waitFor(async () => {
      const s = (await (await fetch(`${agent.localApi}/status`)).json()) as { cloud: string; instances: Record<string, { pid?: number; phase: string }> };
      return s.instances['cam-site-b-0']?.phase === 'Running' ? s : undefined;
    }, { timeoutMs: 15_000, message: 'instance back from the cache' });
    const newPid = status.instances['cam-site-b-0']?.pid ?? 0;
    assert.notEqual(newPid, oldPid);
    assert.ok(pidAlive(newPid));
    assert.deepEqual(markedPids('cam'), [newPid]);
    assert.match(status.cloud, /^disconnected since /);
  });
});

// Keep the type import used when assertions above change.
export type { EdgeApp };
