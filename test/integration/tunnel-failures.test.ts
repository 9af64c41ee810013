// Tunnel streams (issue 8) when a process dies or freezes under them: a real hub and agent (child
// processes) and the CLI as a user runs it. An `outpost exec` command left running by a SIGKILLed
// agent is ended by the restarted agent (the instance itself keeps running); a `logs -f` whose hub
// is frozen (SIGSTOP) ends with "lost the hub" instead of waiting forever.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { processGroupMembers } from '../../edge-agent/runtime/proc-stat.js';
import { TestCluster, killGroup, pidAlive, type Proc } from '../helpers/cluster.js';
import { startCli, startExec } from '../helpers/exec-cli.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const marker = `outpost-tunnel-failures-${process.pid}`;
const execMarker = `${marker}-exec`;

const objects = `apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-f}
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: ticker}
spec:
  units: {names: [site-f]}
  template:
    processes:
      - command: sh
        args: ["-c", "while true; do echo tick; sleep 0.5; done", "${marker}"]
    terminationGracePeriodSeconds: 1
`;

function pids(text: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', text], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('tunnel: a killed agent, a frozen hub', () => {
  const cluster = new TestCluster();
  let agent: Proc & { localApi: string };

  before(async () => {
    await cluster.startHub();
    const applied = cluster.cli(['apply', '-f', '-'], objects);
    assert.equal(applied.code, 0, applied.stderr);
    agent = await cluster.startAgent('edge-f1', 'site-f');
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/edge-f1`)).status?.phase === 'Ready', { timeoutMs: 20_000, message: 'edge-f1 Ready' });
    await waitFor(async () => (await cluster.api<Instance>('GET', `${API}/instances/ticker-site-f-0`)).status?.phase === 'Running', { timeoutMs: 30_000, message: 'ticker running' });
  });

  after(async () => {
    cluster.hub?.child.kill('SIGCONT');
    await cluster.cleanup();
    for (const pid of pids(marker)) killGroup(pid);
  });

  test('an exec\'d command left by a SIGKILLed agent is ended when the agent starts again; the instance keeps running', async () => {
    const [instancePid] = pids(`^sh -c .*${marker}$`);
    assert.ok(instancePid, 'the instance\'s process runs');
    // `; true` keeps sh (with the marker in its command line) beside its child sleep.
    const running = startExec(cluster, ['ticker', '--', 'sh', '-c', 'echo started; sleep 300; true', execMarker]);
    await waitFor(() => running.stdout().includes('started'), { timeoutMs: 30_000, message: 'the exec\'d command runs' });
    // ^sh: not the CLI, whose own command line names the marker too.
    const [execPid] = pids(`^sh -c .*${execMarker}$`);
    assert.ok(execPid, 'the exec\'d sh runs');
    assert.ok(processGroupMembers(execPid).length >= 2, 'sh and its sleep run in the exec\'s own process group');

    await agent.kill();
    const cli = await running.done;
    assert.equal(cli.code, 1);
    // Nothing ends it while no agent runs (the gap this test guards: it ran on for good).
    assert.ok(pidAlive(execPid), 'the exec\'d command outlives the SIGKILLed agent');

    agent = await cluster.restartAgent('edge-f1', cluster.requireHub().url);
    await waitFor(() => processGroupMembers(execPid).length === 0 && !pidAlive(execPid), { timeoutMs: 15_000, message: 'the restarted agent ended the exec\'s process group' });
    assert.deepEqual(pids(`^sh -c .*${execMarker}$`), []);
    assert.ok(pidAlive(instancePid), 'the instance\'s own process still runs (adopted, not ended)');
    assert.match(agent.output(), /ended an exec'd command left running by the previous agent/);
    // The record was dropped: a further restart finds nothing to end.
    await agent.kill();
    agent = await cluster.restartAgent('edge-f1', cluster.requireHub().url);
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/edge-f1`)).status?.phase === 'Ready', { timeoutMs: 20_000, message: 'edge-f1 Ready again' });
    assert.doesNotMatch(agent.output(), /ended an exec'd command/);
    assert.ok(pidAlive(instancePid), 'the instance still runs after the second restart');
  });

  test('a quiet command longer than the tunnel deadline runs to its end: the hub answers the CLI\'s pings', async () => {
    const quiet = startCli(cluster, ['exec', 'ticker', '--', 'sh', '-c', 'sleep 3; echo quiet-done'], { OUTPOST_TUNNEL_DEADLINE: '1s' });
    const r = await quiet.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(quiet.stdout(), /quiet-done/);
  });

  test('logs -f through a frozen hub (SIGSTOP) ends with "lost the hub" and a non-zero exit', async () => {
    const hub = cluster.requireHub();
    const follow = await waitFor(async () => {
      const f = startCli(cluster, ['logs', '-f', 'ticker'], { OUTPOST_TUNNEL_DEADLINE: '2s' });
      const ok = await waitFor(() => f.stdout().includes('tick'), { timeoutMs: 5_000 }).then(() => true, () => false);
      if (ok) return f;
      f.child.kill('SIGKILL');
      await f.done;
      return undefined;
    }, { timeoutMs: 40_000, message: 'logs -f follows the ticker' });
    hub.child.kill('SIGSTOP');
    try {
      const r = await Promise.race([follow.done, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000).unref())]);
      assert.notEqual(r, 'hung', 'logs -f ended while the hub is frozen');
      if (r === 'hung') return;
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /lost the hub: no answer for 2s/);
    } finally {
      hub.child.kill('SIGCONT');
      follow.child.kill('SIGKILL');
    }
  });

  test('a bad OUTPOST_TUNNEL_DEADLINE is refused with the variable named', async () => {
    const r = await startCli(cluster, ['logs', '-f', 'ticker'], { OUTPOST_TUNNEL_DEADLINE: 'soon' }).done;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /OUTPOST_TUNNEL_DEADLINE: "soon" is not a duration/);
  });
});
