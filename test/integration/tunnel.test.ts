// Tunnel streams (issue 8) end to end: a real hub and agent (child processes), process instances
// (a ticker, an HTTP server, a bulk TCP sender), and the CLI as a user runs it: logs (follow across
// a restart), port-forward, the hub's HTTP proxy, 1 GiB through a port-forward while the node
// keeps its session and receives a desired-state change, a stalled reader next to a busy stream,
// and the agent killed mid-stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { freePort } from '../../shared/free-port.js';
import { TestCluster, killGroup, repoRoot, type Proc } from '../helpers/cluster.js';
import { waitFor, within } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const marker = `outpost-tunnel-test-${process.pid}`;
const GiB = 1024 * 1024 * 1024;
/** Bound on one bulk transfer: 1 GiB took up to 250 s on a machine with load ~18 (4 MB/s would be a hang). */
const TRANSFER_MS = 300_000;

const httpServer = `require('http').createServer((q, r) => r.end('hello from ' + process.env.OUTPOST_INSTANCE + ' ' + q.url)).listen(+process.argv[1], '127.0.0.1')`;
// Sends as many bytes as the client asks for in its first line ("N\\n"), with backpressure.
const bulkServer = `require('net').createServer((s) => {
  s.on('error', () => {});
  let asked = '';
  s.on('data', function first(d) {
    asked += d; if (!asked.includes('\\n')) return; s.off('data', first);
    let left = Number(asked.split('\\n')[0]); const chunk = Buffer.alloc(256 * 1024, 120);
    const more = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', more); } s.end(); };
    more();
  });
}).listen(+process.argv[1], '127.0.0.1')`;

function objects(webPort: number, bulkPort: number): string {
  return `apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: site-t}
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: ticker}
spec:
  units: {names: [site-t]}
  replicasPerUnit: 2
  template:
    processes:
      - command: sh
        args: ["-c", "echo \\"start $$\\"; i=0; while true; do echo \\"tick $i\\"; i=$((i+1)); sleep 0.2; done", "${marker}"]
    terminationGracePeriodSeconds: 1
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: web}
spec:
  units: {names: [site-t]}
  template:
    processes:
      - command: ${JSON.stringify(process.execPath)}
        args: ["-e", ${JSON.stringify(httpServer)}, "${webPort}", "${marker}"]
    terminationGracePeriodSeconds: 1
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: bulk}
spec:
  units: {names: [site-t]}
  template:
    processes:
      - command: ${JSON.stringify(process.execPath)}
        args: ["-e", ${JSON.stringify(bulkServer)}, "${bulkPort}", "${marker}"]
    terminationGracePeriodSeconds: 1
`;
}

function markedPids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The CLI as a long-running child (logs -f, port-forward), output collected. */
function cliChild(cluster: TestCluster, args: string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), ...args], {
    env: { ...process.env, OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** SIGTERM, then SIGKILL if the CLI has not exited within 10 s (a hang fails the test, never blocks it). */
async function stopCli(c: { child: ChildProcess; exited: Promise<number | null> }): Promise<number | null> {
  c.child.kill('SIGTERM');
  try {
    return await within(c.exited, 10_000, 'the CLI to exit after SIGTERM');
  } catch (err) {
    c.child.kill('SIGKILL');
    await within(c.exited, 5_000, 'the CLI to exit after SIGKILL');
    throw err;
  }
}

/** Starts `outpost port-forward` and returns the local port it listens on. */
async function startForward(cluster: TestCluster, target: string, remote: number) {
  const pf = cliChild(cluster, ['port-forward', target, `0:${remote}`]);
  const local = await waitFor(() => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(pf.out())?.[1], { timeoutMs: 60_000, message: `port-forward start; stderr:\n${pf.err()}` });
  return { ...pf, port: Number(local) };
}

/** Asks the bulk server (through `port`) for `bytes`; counts what arrives. */
function bulkRead(port: number, bytes: number): { socket: Socket; received: () => number; done: Promise<number> } {
  const socket = connect({ host: '127.0.0.1', port });
  let received = 0;
  socket.on('data', (d: Buffer) => { received += d.length; });
  socket.write(`${bytes}\n`);
  const done = new Promise<number>((resolve, reject) => {
    socket.once('end', () => resolve(received));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection closed after ${received} of ${bytes} bytes`)));
  });
  // A transfer the test cuts on purpose (destroy) need not be awaited.
  done.catch(() => undefined);
  return { socket, received: () => received, done };
}

async function nodePhase(cluster: TestCluster, node: string): Promise<string | undefined> {
  return (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/${node}`)).status?.phase;
}

describe('tunnel: logs, port-forward, HTTP proxy', () => {
  const cluster = new TestCluster();
  let agent: Proc;
  let webPort: number;
  let bulkPort: number;
  const running = (name: string, timeoutMs = 30_000) => waitFor(async () => {
    const i = await cluster.api<Instance>('GET', `${API}/instances/${name}`);
    return i.status?.phase === 'Running' ? i : undefined;
  }, { timeoutMs, message: `${name} running` });

  before(async () => {
    webPort = await freePort();
    bulkPort = await freePort();
    await cluster.startHub();
    const applied = cluster.cli(['apply', '-f', '-'], objects(webPort, bulkPort));
    assert.equal(applied.code, 0, applied.stderr);
    agent = await cluster.startAgent('edge-t1', 'site-t');
    await waitFor(async () => (await nodePhase(cluster, 'edge-t1')) === 'Ready', { timeoutMs: 20_000, message: 'edge-t1 Ready' });
    for (const name of ['ticker-site-t-0', 'ticker-site-t-1', 'web-site-t-0', 'bulk-site-t-0']) await running(name);
  });

  after(async () => {
    await cluster.cleanup();
    for (const pid of markedPids()) killGroup(pid);
  });

  test('logs: several instances interleaved with a prefix, --tail, and errors a user understands', async () => {
    await waitFor(() => /tick 3/.test(cluster.cli(['logs', 'ticker', '--instance', 'ticker-site-t-1']).stdout), { timeoutMs: 10_000, message: 'ticks logged' });
    const both = cluster.cli(['logs', 'ticker']);
    assert.equal(both.code, 0, both.stderr);
    assert.match(both.stdout, /^\[ticker-site-t-0\] tick \d+$/m);
    assert.match(both.stdout, /^\[ticker-site-t-1\] tick \d+$/m);
    const one = cluster.cli(['logs', 'ticker', '--instance', 'ticker-site-t-0', '--tail', '2']);
    assert.equal(one.code, 0, one.stderr);
    const lines = one.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, one.stdout);
    assert.match(lines[0] ?? '', /^tick \d+$/, 'one instance: no prefix');

    const missing = cluster.cli(['logs', 'nosuch']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /app nosuch has no instances/);
    const badTail = cluster.cli(['logs', 'ticker', '--tail', 'many']);
    assert.equal(badTail.code, 1);
    assert.match(badTail.stderr, /--tail must be a number of lines/);
  });

  test('logs -f keeps following across a restart of the instance; --previous shows the run before', async () => {
    const name = 'ticker-site-t-0';
    const follow = cliChild(cluster, ['logs', 'ticker', '--instance', name, '-f', '--tail', '1']);
    try {
      const firstPid = Number(await waitFor(() => {
        const starts = [...cluster.cli(['logs', 'ticker', '--instance', name]).stdout.matchAll(/^start (\d+)$/gm)];
        return starts[starts.length - 1]?.[1];
      }, { timeoutMs: 10_000, message: 'start line' }));
      await waitFor(() => /tick \d+\n/.test(follow.out()), { timeoutMs: 10_000, message: `following; stderr: ${follow.err()}` });
      const before = (await cluster.api<Instance>('GET', `${API}/instances/${name}`)).status;
      assert.ok(before?.pid);
      killGroup(before.pid);
      // The restarted process writes a new start line: the same follow prints it, then its ticks.
      const restarted = await waitFor(() => {
        const m = /^start (\d+)$/m.exec(follow.out());
        return m && Number(m[1]) !== firstPid ? Number(m[1]) : undefined;
      }, { timeoutMs: 20_000, message: `a start line after the restart in the follow; out:\n${follow.out()}\nerr:\n${follow.err()}` });
      await waitFor(() => new RegExp(`start ${restarted}\\ntick 0\\ntick 1\\n`).test(follow.out()), { timeoutMs: 10_000, message: 'ticks of the new run' });
      assert.equal(follow.child.exitCode, null, 'follow still running');
      const previous = cluster.cli(['logs', 'ticker', '--instance', name, '--previous']);
      assert.equal(previous.code, 0, previous.stderr);
      assert.doesNotMatch(previous.stdout, new RegExp(`start ${restarted}`));
      assert.match(previous.stdout, new RegExp(`start ${firstPid}\\n`));
      assert.match(previous.stdout, /tick \d+/);
    } finally {
      follow.child.kill('SIGKILL');
      await within(follow.exited, 10_000, 'logs -f to exit after SIGKILL');
    }
  });

  test('port-forward to an HTTP server on the edge, and the hub HTTP proxy to it', async () => {
    const pf = await startForward(cluster, 'web', webPort);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`http://127.0.0.1:${pf.port}/path-${i}?q=1`);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), `hello from web-site-t-0 /path-${i}?q=1`);
      }
    } finally {
      await stopCli(pf);
    }
    const hub = cluster.requireHub();
    const proxied = await fetch(`${hub.url}/api/v1/proxy/apps/web/${webPort}/dash/board?x=2`, { headers: { Authorization: `Bearer ${hub.token}` } });
    const body = await proxied.text();
    assert.equal(proxied.status, 200, body);
    assert.equal(body, 'hello from web-site-t-0 /dash/board?x=2');
    const anonymous = await fetch(`${hub.url}/api/v1/proxy/apps/web/${webPort}/`);
    assert.equal(anonymous.status, 401);
    // A port the instance does not listen on is refused by the agent, not dialled.
    const other = await fetch(`${hub.url}/api/v1/proxy/apps/web/${bulkPort}/`, { headers: { Authorization: `Bearer ${hub.token}` } });
    assert.equal(other.status, 403);
    assert.match(((await other.json()) as { message: string }).message, /does not listen on port/);
    const audit = await cluster.api<{ items: { action: string; app: string; outcome: string; node: string }[] }>('GET', '/api/v1/audit?app=web');
    assert.ok(audit.items.some((e) => e.action === 'port-forward' && e.outcome === 'opened' && e.node === 'edge-t1'));
    assert.ok(audit.items.some((e) => e.action === 'http' && e.outcome === 'OUTPOST_FORBIDDEN'));
  });

  test('1 GiB through a port-forward: the node keeps its session and a desired-state change reaches it', { timeout: TRANSFER_MS + 90_000 }, async () => {
    const pf = await startForward(cluster, 'bulk', bulkPort);
    let phases = new Set<string | undefined>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        // A failed poll (an HTTP keep-alive race) says nothing about the node: skip it.
        const phase = await nodePhase(cluster, 'edge-t1').catch(() => null);
        if (phase !== null) phases.add(phase);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const read = bulkRead(pf.port, GiB);
      await waitFor(() => read.received() > 64 * 1024 * 1024, { timeoutMs: 60_000, message: 'first 64 MiB' });
      phases = new Set([await nodePhase(cluster, 'edge-t1')]);
      // A desired-state change while the transfer runs: a new app must start on the node. Through
      // the API from this process (a CLI run with spawnSync would stop this reader, and so the
      // transfer, for as long as it runs).
      await cluster.api('POST', `${API}/edgeapps`, {
        apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'during' },
        spec: { units: { names: ['site-t'] }, template: { processes: [{ command: 'sh', args: ['-c', 'sleep 300', marker] }], terminationGracePeriodSeconds: 1 } },
      });
      const appliedAt = Date.now();
      const atApply = read.received();
      // A hang guard, not a deadline. (This app once ran \`sleep 300 <marker>\`, which exits at
      // once with an error: it crash-looped and showed Running only when a poll caught a restart,
      // which looked like a change starved by the transfer.)
      await running('during-site-t-0', 30_000);
      const changeMs = Date.now() - appliedAt;
      const atChange = read.received();
      // Control traffic is not queued behind stream data: the change lands mid-transfer (it took
      // milliseconds; the rest of the GiB takes seconds).
      assert.ok(atChange < GiB, 'the new instance ran before the transfer ended');
      const total = await within(read.done, TRANSFER_MS, '1 GiB through the port-forward');
      assert.equal(total, GiB, 'every byte arrived');
      polling = false;
      await poller;
      assert.deepEqual([...phases], ['Ready'], 'the node stayed Ready through the transfer');
      assert.doesNotMatch(agent.output(), /hub link down|read deadline/, 'the agent never lost its session');
      // For the report (not asserted: it depends on the machine): where the transfer was when the change landed.
      process.stderr.write(`# desired-state change Running ${changeMs} ms after the apply, while ${((atChange - atApply) / 1024 / 1024).toFixed(0)} MiB more arrived (at ${(atChange / 1024 / 1024).toFixed(0)} of 1024)\n`);
    } finally {
      polling = false;
      await poller;
      await stopCli(pf);
    }
  });

  test('a reader that stops reading does not stall another stream on the same session', { timeout: TRANSFER_MS + 90_000 }, async () => {
    const pf = await startForward(cluster, 'bulk', bulkPort);
    try {
      const stalled = bulkRead(pf.port, 512 * 1024 * 1024);
      await waitFor(() => stalled.received() > 1024 * 1024, { timeoutMs: 20_000, message: 'stalled stream started' });
      stalled.socket.pause();
      const other = bulkRead(pf.port, 64 * 1024 * 1024);
      assert.equal(await within(other.done, TRANSFER_MS, 'the other stream'), 64 * 1024 * 1024, 'the other stream completed');
      assert.ok(stalled.received() < 512 * 1024 * 1024, 'the stalled stream is still stalled');
      stalled.socket.destroy();
      // The session is still healthy: a third stream works.
      const third = bulkRead(pf.port, 1024 * 1024);
      assert.equal(await within(third.done, 60_000, 'a third stream'), 1024 * 1024);
    } finally {
      await stopCli(pf);
    }
  });

  test('the agent killed mid-stream: streams end with a clear error, the CLI exits, new streams name the disconnected node', async () => {
    const follow = cliChild(cluster, ['logs', 'ticker', '-f']);
    const pf = await startForward(cluster, 'bulk', bulkPort);
    const read = bulkRead(pf.port, GiB);
    await waitFor(() => /tick/.test(follow.out()) && read.received() > 1024 * 1024, { timeoutMs: 20_000, message: 'streams running' });
    const closed = read.done.then(() => 'ended', () => 'reset');
    await agent.kill();
    const code = await within(follow.exited, 20_000, `logs -f to exit after the agent died; stderr:\n${follow.err()}`).catch(async (err: unknown) => {
      await stopCli(follow);
      throw err;
    });
    assert.equal(code, 1, `logs -f exits with 1; stderr:\n${follow.err()}`);
    assert.match(follow.err(), /site-t\/edge-t1 disconnected from the hub/);
    assert.ok(['ended', 'reset'].includes(await within(closed, 20_000, 'the cut transfer to end')));
    assert.ok(read.received() < GiB, 'the transfer was cut');
    await waitFor(async () => (await nodePhase(cluster, 'edge-t1')) === 'Disconnected', { timeoutMs: 20_000, message: 'node Disconnected' });
    const after = cluster.cli(['logs', 'ticker', '--instance', 'ticker-site-t-0']);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /site-t\/edge-t1 is disconnected since \d\d:\d\d UTC; logs are available on the node at /);
    assert.ok(after.stderr.includes(`at ${join(cluster.dir, 'agents', 'edge-t1', 'logs', 'ticker-site-t-0', 'current.log')}`), after.stderr);
    await stopCli(pf);
  });
});
