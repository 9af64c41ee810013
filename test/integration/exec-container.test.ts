// `outpost exec` (issue 8) into a container instance: a real hub and agent, the agent on a
// private Podman (its Docker-compatible API), exec through the Engine API. Skips, saying why,
// where Podman cannot run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Instance } from '../../shared/api/index.js';
import { TestCluster, pidAlive, type Proc } from '../helpers/cluster.js';
import { cliInTerminal, exec, startExec } from '../helpers/exec-cli.js';
import { startPodman, TEST_IMAGE, type Podman } from '../helpers/podman.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

describe('outpost exec into a container instance (real Podman)', () => {
  let podman: Podman | undefined;
  let skip: string | undefined;
  let agent: Proc | undefined;
  const cluster = new TestCluster();

  before(async () => {
    const p = await startPodman();
    if ('skip' in p) {
      skip = p.skip;
      return;
    }
    podman = p;
    await cluster.startHub();
    const yaml = `apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-c}
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: box}
spec:
  units: {names: [site-c]}
  template:
    terminationGracePeriodSeconds: 1
    containers:
      - image: ${TEST_IMAGE}
        command: [sleep, "3600"]
        env: {BOX_MODE: boxed}
        stopSignal: SIGKILL
`;
    const applied = cluster.cli(['apply', '-f', '-'], yaml);
    assert.equal(applied.code, 0, applied.stderr);
    agent = await cluster.startAgent('edge-c1', 'site-c', ['--container-socket', p.socket]);
    await waitFor(async () => (await cluster.api<Instance>('GET', `${API}/instances/box-site-c-0`)).status?.phase === 'Running', { timeoutMs: 60_000, message: 'box running' });
  });

  after(async () => {
    await cluster.cleanup();
    await podman?.stop();
  });

  test('stdin, stdout, stderr and exit code through the Engine API exec', async (t) => {
    if (skip) return t.skip(skip);
    const r = await exec(cluster, ['box', '-i', '--', 'sh', '-c', 'cat; echo "mode=$BOX_MODE" ; echo oops >&2; exit 4'], 'into the box\n');
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, 'into the box\nmode=boxed\n');
    assert.equal(r.stderr, 'oops\n');
  });

  test('interactive with a terminal that follows the window size', async (t) => {
    if (skip) return t.skip(skip);
    const term = cliInTerminal(cluster, ['exec', 'box', '-it', '--', 'sh']);
    try {
      term.term.write('stty size\r');
      await term.expect(/30 100/, 0, 'container terminal of the local size');
      const from = term.output().length;
      term.term.resize(120, 40);
      await waitFor(async () => {
        term.term.write('stty size\r');
        return waitFor(() => /40 120/.test(term.output().slice(from)), { timeoutMs: 1000 }).catch(() => false);
      }, { timeoutMs: 20_000, message: 'resized container terminal' });
      term.term.write('exit 6\r');
      assert.equal(await term.exited, 6);
    } finally {
      term.term.kill('SIGKILL');
    }
  });

  test('an exec left running by a SIGKILLed agent is ended when the agent starts again; the container keeps running', async (t) => {
    if (skip || !podman || !agent) return t.skip(skip);
    const marker = `outpost-ctr-exec-${process.pid}`;
    const before = await cluster.api<Instance>('GET', `${API}/instances/box-site-c-0`);
    // `; true` keeps sh (with the marker in its command line) beside its child sleep.
    const running = startExec(cluster, ['box', '--', 'sh', '-c', 'echo started; sleep 300; true', marker]);
    await waitFor(() => running.stdout().includes('started'), { timeoutMs: 30_000, message: 'the exec runs in the container' });
    // ^sh: not the CLI, whose command line names the marker too. The container's processes are host processes.
    const [execPid] = pids(`^sh -c .*${marker}$`);
    assert.ok(execPid, 'the exec\'d sh is visible on the host');
    await agent.kill();
    assert.equal((await running.done).code, 1);
    assert.ok(pidAlive(execPid), 'the engine does not end an exec whose client went away');
    agent = await cluster.restartAgent('edge-c1', cluster.requireHub().url, ['--container-socket', podman.socket]);
    // The agent logs it once the whole group is gone, a moment after the leader.
    await waitFor(() => !pidAlive(execPid) && /ended an exec'd command left running by the previous agent/.test(agent?.output() ?? ''), { timeoutMs: 20_000, message: 'the restarted agent ended the exec' });
    const after = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/box-site-c-0`);
      return i.status?.phase === 'Running' ? i : undefined;
    }, { timeoutMs: 30_000, message: 'box running after the restart' });
    assert.equal(after.status?.containerId, before.status?.containerId, 'the same container: adopted, not restarted');
  });
});

function pids(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
