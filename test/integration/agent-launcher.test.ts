// bin/outpost-agent, the production launcher: the agent it starts (a real process, reached through a
// symlink as npm's node_modules/.bin links it) has MALLOC_ARENA_MAX=1 in its environment and the node
// flags on its command line from the start, the agent's own flags and more node flags pass through,
// the instances it starts do not inherit the launcher's settings, and bad invocations say why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, repoRoot } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const launcher = join(repoRoot, 'bin/outpost-agent');

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((e) => e !== '');

describe('bin/outpost-agent', () => {
  const cluster = new TestCluster();
  const pids: number[] = [];
  let agent: Awaited<ReturnType<TestCluster['startAgent']>>;

  before(async () => {
    const linkDir = join(cluster.dir, 'bin-link');
    mkdirSync(linkDir);
    symlinkSync(launcher, join(linkDir, 'outpost-agent'));
    cluster.agentLauncher = join(linkDir, 'outpost-agent');
    cluster.agentEnv = { OUTPOST_NODE: process.execPath, OUTPOST_AGENT_NODE_FLAGS: '--max-old-space-size=200 --stack-size=900' };
    delete process.env.MALLOC_ARENA_MAX; // so that the launcher's default is what the agent gets
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'u' }, spec: {} });
    agent = await cluster.startAgent('launched', 'u', ['--labels', 'zone=launcher-test']);
  });
  after(async () => {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  });

  test('the started agent is node itself, with MALLOC_ARENA_MAX=1 and the flags in place from the start; flags pass through', async () => {
    const pid = agent.child.pid!;
    const args = cmdline(pid);
    // exec all the way: the launcher's pid is the agent's node process (signals reach the agent).
    assert.equal(args[0], process.execPath, `command line: ${args.join(' ')}`);
    const script = args.findIndex((a) => a.endsWith('/bin/outpost.js'));
    assert.ok(script > 0, `outpost.js on the command line: ${args.join(' ')}`);
    // Resolved through the symlink to the real directory.
    assert.equal(args[script], join(repoRoot, 'bin/outpost.js'));
    assert.deepEqual(args.slice(1, script), ['--single-threaded-gc', '--v8-pool-size=1', '--semi-space-growth-factor=1', '--max-old-space-size=200', '--stack-size=900']);
    assert.equal(args[script + 1], 'agent');
    const agentArgs = args.slice(script + 2);
    assert.ok(agentArgs.join(' ').includes('--labels zone=launcher-test'), `agent flags: ${agentArgs.join(' ')}`);
    assert.ok(agentArgs.includes('--name') && agentArgs[agentArgs.indexOf('--name') + 1] === 'launched');
    assert.ok(environ(pid).includes('MALLOC_ARENA_MAX=1'), 'MALLOC_ARENA_MAX=1 in the agent environment');
    // The agent works: its local API answers and the hub sees the node with its labels.
    assert.equal((await fetch(`${agent.localApi}/v1/status`)).status, 200);
    await waitFor(async () => {
      const n = await cluster.api<{ metadata: { labels?: Record<string, string> } }>('GET', `${API}/edgenodes/launched`).catch(() => undefined);
      return n?.metadata.labels?.zone === 'launcher-test';
    }, { timeoutMs: 20_000, message: 'EdgeNode launched with label zone=launcher-test' });
  });

  test("the agent's instances do not inherit the launcher's settings", async () => {
    await cluster.api('POST', `${API}/edgeapps`, {
      apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'sl' },
      spec: { units: { names: ['u'] }, template: { processes: [{ command: 'sleep', args: ['100000'] }] } },
    });
    const i = await waitFor(async () => {
      const x = await cluster.api<Instance>('GET', `${API}/instances/sl-u-0`).catch(() => undefined);
      return x?.status?.phase === 'Running' && x.status.pid ? x : undefined;
    }, { timeoutMs: 30_000, message: 'sl running' });
    const pid = i.status!.pid!;
    pids.push(pid);
    assert.ok(!environ(pid).some((e) => e.startsWith('MALLOC_ARENA_MAX=')), `instance environment: ${environ(pid).join(' ')}`);
  });

  test('SIGTERM reaches the agent, which exits', async () => {
    await agent.stop();
    assert.ok(agent.child.exitCode !== null || agent.child.signalCode !== null);
  });

  test('bad invocations fail with a message', () => {
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(launcher, args, { encoding: 'utf8', env: { ...process.env, OUTPOST_NODE: process.execPath, ...env } });
    const dup = run(['agent', '--hub', 'http://127.0.0.1:1']);
    assert.equal(dup.status, 2);
    assert.match(dup.stderr, /runs 'outpost agent' itself; give it the agent's flags only/);
    const noNode = run(['--data', '/tmp/x'], { OUTPOST_NODE: '/nonexistent/node' });
    assert.equal(noNode.status, 127);
    assert.match(noNode.stderr, /node not found \('\/nonexistent\/node'\).*OUTPOST_NODE/);
    // The agent's own argument errors come through as they are.
    const noData = run(['--hub', 'http://127.0.0.1:1']);
    assert.notEqual(noData.status, 0);
    assert.match(noData.stderr, /required option '--data <dir>' not specified/);
  });
});
