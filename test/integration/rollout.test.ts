// Rolling updates with real hub, agents and processes: per-unit steps bounded by maxUnavailable
// (checked on the instance timeline from the watch API), a new revision that fails readiness
// (old instances keep serving, the unit fails, `rollout undo` restores it), `rollout status`
// as a script sees it, and a unit offline during the rollout that completes when it returns.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { EdgeApp, EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, repoRoot, runCli } from '../helpers/cluster.js';
import { edgeApp } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const marker = `outpost-rollout-${randomBytes(4).toString('hex')}`;

function markedPids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Version `v` of the app; `ready: false` gives it a readiness probe that never passes. */
function webApp(v: string, ready = true): EdgeApp {
  const app = edgeApp('web', {
    units: ['site-a', 'site-b'], replicasPerUnit: 2,
    template: {
      processes: [{ command: 'sh', args: ['-c', 'while :; do sleep 1; done', marker], env: { VERSION: v }, readinessProbe: { exec: { command: [ready ? 'true' : 'false'] }, periodSeconds: 1, initialDelaySeconds: 2 } }],
      terminationGracePeriodSeconds: 1,
    },
  });
  app.spec.rollout = { maxUnavailable: 1, progressDeadlineSeconds: 8 };
  return app;
}

/**
 * Watches every Instance through the hub's watch API and records, at every event, how many
 * instances of each unit are not serving (not ready, or not yet running what their spec asks).
 */
class InstanceTimeline {
  readonly worst = new Map<string, number>();
  readonly events: string[] = [];
  private readonly instances = new Map<string, Instance>();
  private readonly abort = new AbortController();
  private done: Promise<void> | undefined;

  async start(cluster: TestCluster): Promise<void> {
    const res = await cluster.fetch('GET', `${API}/instances?watch=true`);
    const body = res.body;
    assert.ok(res.ok && body);
    this.done = (async () => {
      const dec = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of body) {
          if (this.abort.signal.aborted) break;
          buf += dec.decode(chunk, { stream: true });
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) this.apply(JSON.parse(line) as { type: string; object: Instance });
          }
        }
      } catch {
        // aborted
      }
    })();
  }

  reset(): void {
    this.worst.clear();
  }

  private apply(e: { type: string; object: Instance }): void {
    const i = e.object;
    if (e.type === 'DELETED') this.instances.delete(i.metadata.name);
    else this.instances.set(i.metadata.name, i);
    const notServing = new Map<string, number>();
    for (const x of this.instances.values()) {
      const serving = x.status?.ready === true && x.status.templateHash === x.spec.templateHash;
      notServing.set(x.spec.unit, (notServing.get(x.spec.unit) ?? 0) + (serving ? 0 : 1));
    }
    for (const [unit, n] of notServing) this.worst.set(unit, Math.max(this.worst.get(unit) ?? 0, n));
    this.events.push(`${e.type} ${i.metadata.name} rev=${i.spec.revision} ready=${i.status?.ready} running=${i.status?.templateHash === i.spec.templateHash}`);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.race([this.done, new Promise((r) => setTimeout(r, 1000))]);
  }
}

/** Runs the CLI against the cluster's hub with its output readable while it runs. */
function followCli(cluster: TestCluster, args: string[]): { stdout(): string; exit: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), ...args], { env: { ...process.env, OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => child.on('close', (code) => { clearTimeout(timer); r({ code, stdout, stderr }); }));
  return { stdout: () => stdout, exit };
}

describe('rolling updates with real agents', () => {
  const cluster = new TestCluster();
  const timeline = new InstanceTimeline();
  const env = () => ({ OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' });
  const app = () => cluster.api<EdgeApp>('GET', `${API}/edgeapps/web`);
  const instances = async (unit: string) => (await cluster.api<{ items: Instance[] }>('GET', `${API}/instances`)).items.filter((i) => i.spec.unit === unit);
  const put = async (next: EdgeApp) => cluster.api('PUT', `${API}/edgeapps/web`, next);
  const versionOf = (i: Instance) => i.spec.template.processes?.[0]?.env?.['VERSION'];
  const follow = (args: string[]) => followCli(cluster, args);

  before(async () => {
    await cluster.startHub();
    assert.equal(cluster.cli(['apply', '-f', '-'], 'apiVersion: outpost.dev/v1alpha1\nkind: NodeUnit\nmetadata: {name: site-a}\nspec: {}\n---\napiVersion: outpost.dev/v1alpha1\nkind: NodeUnit\nmetadata: {name: site-b}\nspec: {}\n').code, 0);
    await Promise.all([cluster.startAgent('a1', 'site-a'), cluster.startAgent('a2', 'site-a'), cluster.startAgent('b1', 'site-b')]);
    await waitFor(async () => (await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items.filter((n) => n.status?.phase === 'Ready').length === 3, { timeoutMs: 30_000, message: '3 nodes Ready' });
    await timeline.start(cluster);
  });

  after(async () => {
    await timeline.stop();
    await cluster.cleanup();
    for (const pid of markedPids()) killGroup(pid);
  });

  test('a rollout replaces one instance at a time per unit; pause holds it; rollout status prints plain lines and exits 0', async () => {
    await cluster.api('POST', `${API}/edgeapps`, webApp('v1'));
    const first = await runCli(['rollout', 'status', 'web', '--timeout', '60s'], env());
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual((await app()).status?.units?.map((u) => [u.unit, u.rollout, u.revision, u.ready]), [['site-a', 'Complete', 1, 2], ['site-b', 'Complete', 1, 2]]);
    assert.equal(markedPids().length, 4);
    timeline.reset();

    // Paused first, so that the command surely sees the rollout before it moves.
    assert.match(cluster.cli(['rollout', 'pause', 'web']).stdout, /edgeapp\/web paused/);
    await put({ ...webApp('v2'), spec: { ...webApp('v2').spec, rollout: { ...webApp('v2').spec.rollout, paused: true } } });
    const follower = follow(['rollout', 'status', 'web', '--timeout', '90s']);
    await waitFor(() => /site-b: .*Paused/.test(follower.stdout()), { timeoutMs: 30_000, message: 'rollout status shows the paused units' });
    assert.ok((await instances('site-a')).every((i) => versionOf(i) === 'v1'), 'no step while paused');
    assert.match(cluster.cli(['rollout', 'resume', 'web']).stdout, /edgeapp\/web resumed/);
    const done = await follower.exit;
    assert.equal(done.code, 0, `${done.stdout}\n${done.stderr}`);
    assert.match(done.stdout, /^site-a: 0\/2 updated, 2 ready, revision 2, Paused$/m);
    assert.match(done.stdout, /^site-a: 1\/2 updated, .*Progressing$/m, 'progress lines');
    assert.match(done.stdout, /^site-a: 2\/2 updated, 2 ready, revision 2, Complete$/m);
    assert.match(done.stdout, /rollout of web complete: revision 2 in 2 unit\(s\)/);
    for (const unit of ['site-a', 'site-b']) {
      assert.ok(((await instances(unit)).every((i) => versionOf(i) === 'v2' && i.status?.ready && i.status.templateHash === i.spec.templateHash)));
      assert.equal(timeline.worst.get(unit), 1, `${unit}: maxUnavailable 1 never exceeded, and used\n${timeline.events.join('\n')}`);
    }
    assert.equal(markedPids().length, 4, 'old processes gone, no extra ones');
  });

  test('a revision that never gets ready: old instances keep serving, the unit fails, undo restores it', async () => {
    timeline.reset();
    await put(webApp('v3-broken', false));
    const failed = await runCli(['rollout', 'status', 'web', '--timeout', '90s'], env());
    assert.equal(failed.code, 1, failed.stdout);
    assert.match(failed.stderr, /rollout of web failed in unit site-a \(no progress for 8s: 1 of 2 instances updated, 0 ready on the new revision; web-site-a-\d: Running, not ready/);
    const a = await app();
    assert.deepEqual(a.status?.units?.map((u) => [u.unit, u.rollout, u.revision, u.updateRevision]), [['site-a', 'Failed', 2, 3], ['site-b', 'Failed', 2, 3]]);
    for (const unit of ['site-a', 'site-b']) {
      const is = await instances(unit);
      assert.deepEqual(is.map(versionOf).sort(), ['v2', 'v3-broken'], 'one step only');
      const old = is.find((i) => versionOf(i) === 'v2');
      assert.ok(old?.status?.ready && old.status.phase === 'Running', 'the old instance keeps serving');
      assert.equal(timeline.worst.get(unit), 1);
    }
    const history = cluster.cli(['rollout', 'history', 'web']);
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /^3\s+[0-9a-f]{12}\s+\S+\s+\S+\s+\*$/m);

    const undo = cluster.cli(['rollout', 'undo', 'web']);
    assert.equal(undo.code, 0, undo.stderr);
    assert.match(undo.stdout, /rolled back to the content of revision 2/);
    const back = await runCli(['rollout', 'status', 'web', '--timeout', '60s'], env());
    assert.equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
    assert.equal((await app()).status?.revision, 4, 'the old content as a new revision');
    for (const unit of ['site-a', 'site-b']) assert.deepEqual((await instances(unit)).map(versionOf), ['v2', 'v2']);
    assert.match(cluster.cli(['rollout', 'history', 'web']).stdout, /^4\s+\S+\s+\S+\s+\S+\s+\*$/m);
    assert.doesNotMatch(cluster.cli(['rollout', 'history', 'web']).stdout, /^2\s/m, 'revision 2 became 4');
  });

  test('a unit offline during the rollout waits without blocking others, and completes when it returns', async () => {
    const b1 = Number(execFileSync('pgrep', ['-f', 'agent.*--name b1'], { encoding: 'utf8' }).trim().split('\n')[0]);
    process.kill(b1, 'SIGKILL');
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/b1`)).status?.phase === 'Disconnected', { timeoutMs: 20_000, message: 'b1 Disconnected' });
    await put(webApp('v5'));
    await waitFor(async () => (await app()).status?.units?.find((u) => u.unit === 'site-a')?.rollout === 'Complete' && (await app()).status?.revision === 5, { timeoutMs: 40_000, message: 'site-a complete' });
    const b = (await app()).status?.units?.find((u) => u.unit === 'site-b');
    assert.equal(b?.rollout, 'Waiting');
    assert.match(b?.message ?? '', /no Ready node/);
    assert.deepEqual((await instances('site-b')).map((i) => i.status?.templateHash === i.spec.templateHash && versionOf(i) === 'v5'), [false, false], 'nothing ran v5 in site-b yet');

    await cluster.restartAgent('b1', cluster.requireHub().url);
    const r = await runCli(['rollout', 'status', 'web', '--timeout', '60s'], env());
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.ok((await instances('site-b')).every((i) => versionOf(i) === 'v5' && i.status?.ready && i.status.templateHash === i.spec.templateHash));
    assert.equal(timeline.worst.get('site-a'), 1);
  });
});
