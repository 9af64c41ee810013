// `outpost exec` (issue 8) into a container instance: a real hub and agent, the agent on a
// private Podman (its Docker-compatible API), exec through the Engine API. Skips, saying why,
// where Podman cannot run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../../shared/api/index.js';
import { TestCluster } from '../helpers/cluster.js';
import { cliInTerminal, exec } from '../helpers/exec-cli.js';
import { startPodman, TEST_IMAGE, type Podman } from '../helpers/podman.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

describe('outpost exec into a container instance (real Podman)', () => {
  let podman: Podman | undefined;
  let skip: string | undefined;
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
    await cluster.startAgent('edge-c1', 'site-c', ['--container-socket', p.socket]);
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
});
