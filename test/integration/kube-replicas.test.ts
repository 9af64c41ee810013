// Opt-in (a real kube-apiserver: OUTPOST_TEST_KUBE_BIN_DIR): two hub replicas
// (`outpost hub --store kubernetes` child processes) on one API server, agents spread over them,
// the leader SIGKILLed. Issue 9: leadership moves, the agents move, no instance restarts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { EdgeNode } from '../../shared/api/index.js';
import { TestCluster, killGroup, pidAlive, repoRoot } from '../helpers/cluster.js';
import { kubeSkipReason, startKubeApiServer, type KubeTestServer } from '../helpers/kube-apiserver.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const skip = kubeSkipReason();
const NS = 'outpost-replicas';
const API = '/apis/outpost.dev/v1alpha1';

interface Replica { id: string; child: ChildProcess; url: string; token: string; output(): string }
interface InstanceState { phase?: string; pid?: number; restarts?: number }

describe('Kubernetes mode: two hub replicas, leader SIGKILLed', { skip }, () => {
  let server: KubeTestServer;
  const cluster = new TestCluster();
  const replicas = new Map<string, Replica>();
  const instancePids: number[] = [];
  /** The replica that survived the first test (the leader afterwards). */
  let survivor: Replica | undefined;
  const sessions = async (r: Replica) => ((await (await fetch(`${r.url}/healthz`)).json()) as { sessions: number }).sessions;

  const startReplica = async (id: string): Promise<Replica> => {
    const data = join(cluster.dir, id);
    const child = spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), 'hub', '--store', 'kubernetes', '--kubeconfig', server.kubeconfigPath, '--namespace', NS,
      '--replica-id', id, '--data', data, '--listen', '127.0.0.1:0', '--read-deadline', '3s', '--ping-interval', '1s', '--node-renew-interval', '5s', '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const info = await waitFor(() => {
      const f = join(data, 'hub.json');
      if (!existsSync(f)) return undefined;
      const v = JSON.parse(readFileSync(f, 'utf8')) as { url: string; pid: number; adminTokenFile: string };
      return v.pid === child.pid ? v : undefined;
    }, { timeoutMs: 60_000, message: `replica ${id} start; output:\n${out}` });
    const r: Replica = { id, child, url: info.url, token: readFileSync(info.adminTokenFile, 'utf8').trim(), output: () => out };
    replicas.set(id, r);
    return r;
  };

  const holder = async (): Promise<string> => {
    const r = await server.kubectl(['-n', NS, 'get', 'lease', 'outpost-hub-leader', '-o', 'jsonpath={.spec.holderIdentity}']);
    return r.code === 0 ? r.stdout.trim() : '';
  };

  const get = async <T>(r: Replica, path: string): Promise<T> => {
    const res = await fetch(`${r.url}${path}`, { headers: { Authorization: `Bearer ${r.token}` } });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return await res.json() as T;
  };

  const agentInstances = async (localApi: string): Promise<Record<string, InstanceState>> => {
    const res = await fetch(`${localApi}/v1/status`);
    return ((await res.json()) as { instances: Record<string, InstanceState> }).instances;
  };

  const runningOf = async (localApi: string, app: string) => {
    const all = await agentInstances(localApi);
    const mine = Object.entries(all).filter(([name, s]) => name.startsWith(`${app}-`) && s.phase === 'Running' && s.pid);
    return mine.length === 1 ? mine[0] : undefined;
  };

  /** What each live replica's cache holds against the API server, for a failed wait on a loaded machine. */
  const diagnose = async (): Promise<string> => {
    const brief = (items: { metadata: { name: string; resourceVersion?: string }; status?: { phase?: string; node?: string } }[]) => items.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}:${o.status?.phase ?? '-'}${o.status?.node ? `/${o.status.node}` : ''}`).join(' ');
    const lines: string[] = [];
    for (const kind of ['edgenodes', 'instances']) {
      const k = await server.kubectl(['get', kind, '-o', 'json']);
      lines.push(`api server ${kind}: ${k.code === 0 ? brief((JSON.parse(k.stdout) as { items: [] }).items) : k.stderr}`);
      for (const r of replicas.values()) {
        if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
        lines.push(`${r.id} cache ${kind}: ${await get<{ items: [] }>(r, `${API}/${kind}`).then((l) => brief(l.items), (e: unknown) => String(e))}`);
      }
    }
    return lines.join('\n');
  };
  const explain = async (err: unknown): Promise<never> => { throw new Error(`${(err as Error).message}\n${await diagnose()}`); };

  /**
   * Joins `name` through replica `r` and writes the agent's credential.json, then waits until every
   * live replica's cache has the EdgeNode: an agent connecting before that is refused by a replica
   * whose watch is behind and moves on to its next URL (correct, but the test wants a known spread).
   */
  const joinVia = async (r: Replica, name: string, unit: string) => {
    const post = async <T>(path: string, body: unknown, auth = true): Promise<T> => {
      const res = await fetch(`${r.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(auth ? { Authorization: `Bearer ${r.token}` } : {}) }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return await res.json() as T;
    };
    const { token } = await post<{ token: string }>(`${API}/jointokens`, { unit });
    const { credential } = await post<{ credential: string }>('/agent/v1/join', { token, node: name }, false);
    const data = join(cluster.dir, 'agents', name);
    mkdirSync(data, { recursive: true, mode: 0o700 });
    writeFileSync(join(data, 'credential.json'), JSON.stringify({ hub: r.url, node: name, unit, credential }), { mode: 0o600 });
    for (const x of replicas.values()) {
      if (x.child.exitCode !== null || x.child.signalCode !== null) continue;
      await waitFor(() => get(x, `${API}/edgenodes/${name}`).then(() => true, () => false), { timeoutMs: 30_000, message: `${name} in ${x.id}'s cache` });
    }
  };

  const apply = async (objects: object[]) => {
    const r = await server.kubectl(['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    server = await startKubeApiServer({ installCrds: true });
    const r = await server.kubectl(['create', 'namespace', NS]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    // OUTPOST_TEST_LOG_DIR=DIR keeps every replica's log there (for a failure on a loaded machine).
    const logDir = process.env.OUTPOST_TEST_LOG_DIR;
    if (logDir) for (const r of replicas.values()) writeFileSync(join(logDir, `kube-replicas-${r.id}.log`), r.output());
    for (const r of replicas.values()) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    for (const pid of instancePids) killGroup(pid);
    await cluster.cleanup();
    await server?.stop();
  });

  test('leadership moves within the lease, agents move to the surviving replica, no instance restarts', async () => {
    const a = await startReplica('hub-a');
    const b = await startReplica('hub-b');
    assert.equal(a.token, b.token, 'one admin token for all replicas (Secret outpost-hub-admin-token)');
    const first = await waitFor(async () => { const h = await holder(); return h === 'hub-a' || h === 'hub-b' ? h : undefined; }, { timeoutMs: 30_000, message: 'a leader' });

    // Operator objects through kubectl: the hubs see them through their watch.
    await apply([nodeUnit('site-a'), nodeUnit('site-b')]);
    await waitFor(async () => (await get<{ items: unknown[] }>(b, `${API}/nodeunits`)).items.length === 2, { timeoutMs: 30_000, message: 'units visible on hub-b' });

    // Agent edge-a joins through hub-a (token created on hub-a) and lists hub-b as its fallback;
    // edge-b the other way round. Each starts on its first URL.
    await joinVia(a, 'edge-a', 'site-a');
    await joinVia(b, 'edge-b', 'site-b');
    const agentA = await cluster.restartAgent('edge-a', `${a.url},${b.url}`);
    const agentB = await cluster.restartAgent('edge-b', `${b.url},${a.url}`);
    await waitFor(async () => (await sessions(a)) === 1 && (await sessions(b)) === 1, { timeoutMs: 30_000, message: 'one agent session on each replica' });

    await apply([edgeApp('web', { units: ['site-a', 'site-b'], template: { command: 'sleep', args: ['600'] } })]);
    const [instA, stateA] = await waitFor(() => runningOf(agentA.localApi, 'web'), { timeoutMs: 60_000, message: 'web running on edge-a (hub-a\'s agent)' }).catch(explain);
    const [instB, stateB] = await waitFor(() => runningOf(agentB.localApi, 'web'), { timeoutMs: 60_000, message: 'web running on edge-b (hub-b\'s agent)' }).catch(explain);
    instancePids.push(stateA.pid as number, stateB.pid as number);

    // SIGKILL the leader: no release, the follower must wait the Lease out.
    const leader = replicas.get(first) as Replica;
    survivor = first === 'hub-a' ? b : a;
    const s = survivor;
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    // Measured side by side: the Lease takeover and the killed replica's agent moving to the survivor.
    const [takeoverMs, reconnectMs] = await Promise.all([
      waitFor(async () => (await holder()) === s.id && Date.now() - killedAt, { timeoutMs: 60_000, intervalMs: 100, message: `Lease taken by ${survivor.id}` }),
      waitFor(async () => (await sessions(s)) === 2 && Date.now() - killedAt, { timeoutMs: 60_000, intervalMs: 100, message: `both agents on ${survivor.id}` }),
    ]);
    process.stdout.write(`# leader ${first} SIGKILLed: ${survivor.id} holds the Lease after ${takeoverMs} ms (lease 12 s, retry 2 s); its agent reconnected to ${survivor.id} after ${reconnectMs} ms\n`);
    await waitFor(async () => {
      const nodes = (await get<{ items: EdgeNode[] }>(s, `${API}/edgenodes`)).items;
      return nodes.length === 2 && nodes.every((n) => n.status?.phase === 'Ready');
    }, { timeoutMs: 30_000, message: 'both nodes Ready' });

    // Leader-only work runs on the survivor: a new app is scheduled onto both agents.
    await apply([edgeApp('after', { units: ['site-a', 'site-b'], template: { command: 'sleep', args: ['600'] } })]);
    const [, afterA] = await waitFor(() => runningOf(agentA.localApi, 'after'), { timeoutMs: 60_000, message: 'app "after" scheduled by the new leader on edge-a' }).catch(explain);
    const [, afterB] = await waitFor(() => runningOf(agentB.localApi, 'after'), { timeoutMs: 60_000, message: 'app "after" on edge-b' }).catch(explain);
    instancePids.push(afterA.pid as number, afterB.pid as number);

    // No instance was restarted by any of it.
    const nowA = (await agentInstances(agentA.localApi))[instA];
    const nowB = (await agentInstances(agentB.localApi))[instB];
    assert.equal(nowA?.pid, stateA.pid, 'edge-a instance same pid');
    assert.equal(nowB?.pid, stateB.pid, 'edge-b instance same pid');
    assert.equal(nowA?.restarts ?? 0, stateA.restarts ?? 0);
    assert.equal(nowB?.restarts ?? 0, stateB.restarts ?? 0);
    assert.ok(pidAlive(stateA.pid as number) && pidAlive(stateB.pid as number));
    const web = (await get<{ items: { metadata: { name: string } }[] }>(s, `${API}/instances`)).items.filter((i) => i.metadata.name.startsWith('web-'));
    assert.deepEqual(web.map((i) => i.metadata.name).sort(), [instA, instB].sort(), 'the new leader did not re-create web\'s instances');
  });

  test('a node whose replica and agent both died is marked Disconnected by the leader after the renew deadline; kubectl delete revokes its credential', async () => {
    const leader = survivor;
    assert.ok(leader, 'the first test left a leader');
    const c = await startReplica('hub-c');
    await joinVia(c, 'edge-c', 'site-a');
    const agentC = await cluster.restartAgent('edge-c', c.url);
    await waitFor(async () => (await sessions(c)) === 1, { timeoutMs: 30_000, message: 'edge-c on hub-c' });
    const node = async () => (await get<EdgeNode>(leader, `${API}/edgenodes/edge-c`)).status;
    await waitFor(async () => (await node())?.phase === 'Ready', { timeoutMs: 30_000, message: 'edge-c Ready' });
    const killedAt = Date.now();
    // The replica first, so that nothing but the leader's deadline can mark the node.
    c.child.kill('SIGKILL');
    await new Promise<void>((r) => { if (c.child.exitCode !== null || c.child.signalCode !== null) r(); else c.child.once('exit', () => r()); });
    await agentC.kill();
    // Renew interval 5 s here: the deadline is 12.5 s after the last renew by hub-c.
    const st = await waitFor(async () => { const v = await node(); return v?.phase === 'Disconnected' ? v : undefined; }, { timeoutMs: 60_000, intervalMs: 200, message: 'edge-c Disconnected by the leader' })
      .catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}; Lease holder ${await holder()}\n${await diagnose()}\nleader log:\n${leader.output().split('\n').filter((l) => /edge-c|stale|health|leader|Lease/.test(l)).slice(-25).join('\n')}`);
      });
    process.stdout.write(`# edge-c marked Disconnected by ${leader.id} ${Date.now() - killedAt} ms after its replica and agent were killed (deadline 12.5 s after the last renew)\n`);
    assert.equal(st.since, st.lastSeen, 'since = the last renew');
    assert.match(leader.output(), /"node":"edge-c".*"msg":"node not renewed by any replica; marked Disconnected"/, 'the leader decided it');
    const others = (await get<{ items: EdgeNode[] }>(leader, `${API}/edgenodes`)).items.filter((n) => n.metadata.name !== 'edge-c');
    assert.deepEqual(others.map((n) => n.status?.phase), ['Ready', 'Ready'], 'nodes held by the leader stay Ready');

    const creds = async () => (await server.kubectl(['-n', NS, 'get', 'secrets', '-l', 'outpost.dev/secret=node-credential', '-o', 'name'])).stdout.trim().split('\n').filter(Boolean).length;
    assert.equal(await creds(), 3);
    const del = await server.kubectl(['delete', 'edgenode', 'edge-c']);
    assert.equal(del.code, 0, del.stderr);
    await waitFor(async () => (await creds()) === 2, { timeoutMs: 30_000, message: 'the leader revoked edge-c\'s credential Secret' });
  });

  test('SIGTERM of the leader releases the Lease: a follower takes it at its next attempt, not after the lease duration', async () => {
    const leader = survivor;
    assert.ok(leader, 'the first test left a leader');
    const d = await startReplica('hub-d');
    await waitFor(async () => (await holder()) === leader.id, { timeoutMs: 10_000, message: `${leader.id} still leads` });
    const exited = new Promise<number | null>((r) => leader.child.once('exit', (code) => r(code)));
    const stoppedAt = Date.now();
    leader.child.kill('SIGTERM');
    const movedMs = await waitFor(async () => (await holder()) === d.id && Date.now() - stoppedAt, { timeoutMs: 30_000, intervalMs: 100, message: 'hub-d takes the released Lease' });
    process.stdout.write(`# ${leader.id} SIGTERMed: hub-d holds the Lease after ${movedMs} ms (lease 12 s: released, not expired)\n`);
    assert.equal(await exited, 0, 'clean exit');
    assert.match(leader.output(), /released the leader Lease/);
  });
});
