// `outpost exec` (issue 8) end to end: a real hub and agent (child processes), process instances,
// the CLI as a user runs it (pipes, and a pseudo-terminal from node-pty for -it), and a container
// instance on a private Podman where it can run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import * as pty from 'node-pty';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup, repoRoot, runCli, type Proc } from '../helpers/cluster.js';
import { startPodman, TEST_IMAGE, type Podman } from '../helpers/podman.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const marker = `outpost-exec-test-${process.pid}`;

const objects = `apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-x}
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeConfig
metadata: {name: shell-conf}
spec:
  data: {greeting: "hello from {{unit}}"}
  secretData: {password: "s3cret"}
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: shell}
spec:
  units: {names: [site-x]}
  template:
    processes:
      - command: sh
        args: ["-c", "while true; do sleep 1; done", "${marker}"]
        env: {APP_MODE: "edge"}
        envFrom: [{config: shell-conf, prefix: CFG_}]
    terminationGracePeriodSeconds: 1
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata:
  name: locked
  annotations: {outpost.dev/tunnel: logs}
spec:
  units: {names: [site-x]}
  template:
    processes:
      - command: sh
        args: ["-c", "while true; do sleep 1; done", "${marker}"]
    terminationGracePeriodSeconds: 1
`;

/** Whether a process whose command line contains `text` runs. */
function pgrep(text: string): boolean {
  try {
    return execFileSync('pgrep', ['-f', text], { encoding: 'utf8' }).trim().length > 0;
  } catch {
    return false;
  }
}

function markedPids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The CLI's exec, run asynchronously: a spawnSync would stop this process from reading the hub's
 * and agent's log pipes, and a hub blocked on a full pipe cannot relay the stream.
 */
function exec(cluster: TestCluster, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(['exec', ...args], { OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' }, input);
}

/** The CLI's exec as a child whose stdout can be watched while it runs; `done` resolves at its exit (killed after 60 s). */
function startExec(cluster: TestCluster, args: string[]) {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), 'exec', ...args], { env: { ...process.env, OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); }));
  return { stdout: () => stdout, done };
}

/**
 * The CLI in a pseudo-terminal of 100x30, as a person at a terminal runs it. `expect` waits for
 * output matching a pattern (after `from`, an offset into the output), bounded in time.
 */
function cliInTerminal(cluster: TestCluster, args: string[]) {
  const term = pty.spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), ...args], {
    name: 'xterm', cols: 100, rows: 30, cwd: repoRoot,
    env: { ...process.env, OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' } as Record<string, string>,
  });
  let output = '';
  term.onData((d) => { output += d; });
  const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
  return {
    term,
    exited,
    output: () => output,
    expect: (pattern: RegExp, from: number, what: string) => waitFor(() => pattern.exec(output.slice(from)), { timeoutMs: 20_000, message: what }).catch((err: Error) => {
      throw new Error(`${err.message}; terminal output:\n${JSON.stringify(output)}`);
    }),
  };
}

describe('outpost exec into process instances', () => {
  const cluster = new TestCluster();
  let agent: Proc;
  let instance: Instance;

  before(async () => {
    await cluster.startHub();
    const applied = cluster.cli(['apply', '-f', '-'], objects);
    assert.equal(applied.code, 0, applied.stderr);
    agent = await cluster.startAgent('edge-x1', 'site-x');
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/edge-x1`)).status?.phase === 'Ready', { timeoutMs: 20_000, message: 'edge-x1 Ready' });
    instance = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/shell-site-x-0`);
      return i.status?.phase === 'Running' ? i : undefined;
    }, { timeoutMs: 30_000, message: 'shell running' });
    await waitFor(async () => (await cluster.api<Instance>('GET', `${API}/instances/locked-site-x-0`)).status?.phase === 'Running', { timeoutMs: 30_000, message: 'locked running' });
  });

  after(async () => {
    await cluster.cleanup();
    for (const pid of markedPids()) killGroup(pid);
  });

  test('stdin in, stdout and stderr apart, the exit code out, in the instance\'s env and cwd', async () => {
    const r = await exec(cluster, ['shell', '-i', '--', 'sh', '-c', 'cat; echo "to stderr" >&2; echo "mode=$APP_MODE cfg=$CFG_greeting pw=$CFG_password inst=$OUTPOST_INSTANCE node=$OUTPOST_NODE"; pwd; exit 7'], 'line one\nline two\n');
    assert.equal(r.code, 7, r.stderr);
    const lines = r.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 3), ['line one', 'line two', 'mode=edge cfg=hello from site-x pw=s3cret inst=shell-site-x-0 node=edge-x1']);
    assert.equal(lines[3], join(cluster.dir, 'agents', 'edge-x1', 'work', instance.metadata.name), 'the instance\'s working directory');
    assert.equal(r.stderr, 'to stderr\n');
  });

  test('by instance name; several MiB of stdin and output pass the stream\'s flow control intact', async () => {
    const input = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh').toString();
    const r = await exec(cluster, [instance.metadata.name, '-i', '--', 'sh', '-c', 'wc -c; head -c 2500000 /dev/zero | tr "\\0" x'], input);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.slice(0, r.stdout.indexOf('\n')).trim(), String(3 * 1024 * 1024));
    assert.equal(r.stdout.length - r.stdout.indexOf('\n') - 1, 2_500_000);
  });

  test('without -i the command reads end of file; a missing command exits 127 with the reason', async () => {
    const r = await exec(cluster, ['shell', '--', 'sh', '-c', 'cat; echo done'], 'ignored\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'done\n');
    const missing = await exec(cluster, ['shell', '--', 'no-such-command-here', 'x']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /command not found: no-such-command-here/);
  });

  test('errors a user understands: app or instance not found, permission denied, bad usage', async () => {
    const unknown = await exec(cluster, ['nosuch', '--', 'true']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: app nosuch not found/);
    const denied = await exec(cluster, ['locked', '--', 'true']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^error: permission denied: app locked allows only logs/);
    const noUnit = await exec(cluster, ['shell', '--unit', 'site-zz', '--', 'true']);
    assert.equal(noUnit.code, 1);
    assert.match(noUnit.stderr, /app shell has no instances on unit site-zz/);
    const noCommand = await exec(cluster, ['shell']);
    assert.notEqual(noCommand.code, 0);
    assert.match(noCommand.stderr, /missing required argument 'command'/);
  });

  test('interactive: a terminal on the edge, raw keys, window resize seen by the command, its exit code', async () => {
    const t = cliInTerminal(cluster, ['exec', 'shell', '-it', '--', 'sh']);
    try {
      t.term.write('stty size; tty\r');
      await t.expect(/30 100\s+\/dev\/pts\/\d+/, 0, 'remote terminal of the local size');
      let from = t.output().length;
      t.term.resize(120, 40);
      // SIGWINCH reaches the CLI asynchronously: ask until the remote terminal has the new size.
      await waitFor(async () => {
        t.term.write('stty size\r');
        return waitFor(() => /40 120/.test(t.output().slice(from)), { timeoutMs: 1000 }).catch(() => false);
      }, { timeoutMs: 20_000, message: 'resized remote terminal' });
      // Raw mode: ^C goes to the remote terminal (it interrupts the remote sleep, not the CLI).
      from = t.output().length;
      t.term.write(`sleep 31.${process.pid}\r`);
      await waitFor(() => pgrep(`sleep 31.${process.pid}`), { timeoutMs: 20_000, message: 'the remote sleep runs' });
      t.term.write('\x03');
      await waitFor(() => !pgrep(`sleep 31.${process.pid}`), { timeoutMs: 20_000, message: 'the remote sleep interrupted' });
      t.term.write('echo status-$?\r');
      await t.expect(/status-130/, from, 'the shell saw SIGINT end the sleep');
      t.term.write('exit 3\r');
      assert.equal(await t.exited, 3);
    } finally {
      t.term.kill('SIGKILL');
    }
  });

  test('the node disconnected, and an agent killed during an exec: clear errors, the CLI does not hang', async () => {
    const running = startExec(cluster, ['shell', '--', 'sh', '-c', 'echo started; sleep 60']);
    await waitFor(() => running.stdout().includes('started'), { timeoutMs: 30_000, message: 'the exec\'d command runs' });
    await agent.kill();
    const r = await running.done;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*(hub connection lost|went away|closed)/);
    const down = await exec(cluster, ['shell', '--', 'true']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /edge-x1.*disconnected since/);
  });
});

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
