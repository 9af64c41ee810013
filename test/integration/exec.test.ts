// `outpost exec` (issue 8) end to end: a real hub and agent (child processes), process instances,
// the CLI as a user runs it (pipes, and a pseudo-terminal from node-pty for -it). Exec into a container
// instance: see exec-container.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import { connect, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { ExecOutputDecoder } from '../../shared/protocol/exec.js';
import { TestCluster, killGroup, repoRoot, runCli, type Proc } from '../helpers/cluster.js';
import { cliInTerminal, exec, startExec } from '../helpers/exec-cli.js';
import { waitFor } from '../helpers/wait.js';

const hasOpenssl = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).status === 0;

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

describe('outpost exec into process instances', () => {
  const cluster = new TestCluster();
  let agent: Proc & { localApi: string };
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
    const [r, missing] = await Promise.all([
      exec(cluster, ['shell', '--', 'sh', '-c', 'cat; echo done'], 'ignored\n'),
      exec(cluster, ['shell', '--', 'no-such-command-here', 'x']),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'done\n');
    assert.equal(missing.code, 127);
    // A local reader that goes away ends the remote command, which would otherwise print forever.
    const piped = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn('sh', ['-c', `"${process.execPath}" "${join(repoRoot, 'bin/outpost.js')}" exec shell -- sh -c 'yes; true' "${marker}" | head -n 2`], { env: { ...process.env, OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' } });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout }); });
    });
    assert.equal(piped.code, 0);
    assert.match(piped.stdout, /^y\ny\n/);
    await waitFor(() => !pgrep(`yes; true ${marker}`), { timeoutMs: 20_000, message: 'the remote yes ended' });
    assert.match(missing.stderr, /command not found: no-such-command-here/);
  });

  test('errors a user understands: app or instance not found, permission denied, bad usage', async () => {
    const [unknown, denied, noUnit, noCommand] = await Promise.all([
      exec(cluster, ['nosuch', '--', 'true']),
      exec(cluster, ['locked', '--', 'true']),
      exec(cluster, ['shell', '--unit', 'site-zz', '--', 'true']),
      exec(cluster, ['shell']),
    ]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: app nosuch not found/);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^error: permission denied: app locked allows only logs/);
    assert.equal(noUnit.code, 1);
    assert.match(noUnit.stderr, /app shell has no instances on unit site-zz/);
    assert.notEqual(noCommand.code, 0);
    assert.match(noCommand.stderr, /missing required argument 'command'/);
  });

  test('the raw tunnel endpoint: bad exec params are refused by the agent with the field named; a bad resize is ignored', async () => {
    const hub = cluster.requireHub();
    const url = (query: string) => `${hub.url.replace(/^http/, 'ws')}/api/v1/tunnel?kind=exec&app=shell&${query}`;
    const refusal = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(url('tty=maybe&command=sh'), { headers: { Authorization: `Bearer ${hub.token}` } });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.once('open', () => reject(new Error('opened a stream with bad params')));
      ws.once('error', () => undefined);
    });
    assert.equal(refusal.status, 400);
    assert.match(refusal.body, /"code":"OUTPOST_BAD_REQUEST".*params\.tty must be true or false/);

    const ws = new WebSocket(url('tty=true&stdin=true&cols=90&rows=20&command=sh'), { headers: { Authorization: `Bearer ${hub.token}` } });
    const controls: Array<Record<string, unknown>> = [];
    let output = '';
    const decoder = new ExecOutputDecoder((_channel, payload) => { output += payload.toString(); });
    ws.on('message', (data, isBinary) => {
      if (isBinary) decoder.push(data as Buffer);
      else controls.push(JSON.parse(data.toString()) as Record<string, unknown>);
    });
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    ws.send(JSON.stringify({ type: 'resize', cols: -1, rows: 'x' }));
    ws.send(JSON.stringify({ type: 'resize', cols: 70, rows: 11 }));
    await waitFor(() => { ws.send(Buffer.from('stty size\n')); return waitFor(() => /11 70/.test(output), { timeoutMs: 1000 }).catch(() => false); }, { timeoutMs: 20_000, message: 'the good resize applied' });
    ws.send(Buffer.from('exit 4\n'));
    await waitFor(() => controls.some((c) => c.type === 'exit'), { timeoutMs: 20_000, message: 'exit control' });
    assert.deepEqual(controls.find((c) => c.type === 'exit'), { type: 'exit', code: 4 });
    assert.equal(controls[0]?.type, 'opened');
    ws.close();
    await closed;
    const metrics = await (await fetch(`${agent.localApi}/metrics`)).text();
    assert.match(metrics, /outpost_agent_exec_refused_total\{[^}]*code="OUTPOST_BAD_REQUEST"[^}]*\} 1\n/);
    assert.match(metrics, /outpost_agent_exec_sessions_total\{[^}]*runtime="process",tty="true"[^}]*\} 1\n/);
    assert.match(metrics, /outpost_agent_exec_sessions\{[^}]*runtime="process"[^}]*\} 0\n/);
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

  test('outpost-stream: a malformed frame from the operator ends that connection only; the hub keeps serving', async () => {
    const hub = cluster.requireHub();
    const { port } = new URL(hub.url);
    const socket = connect({ host: '127.0.0.1', port: Number(port) });
    let answer = '';
    socket.on('data', (d: Buffer) => { answer += d.toString('latin1'); });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(`GET /api/v1/tunnel?kind=exec&app=shell&command=sleep&command=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${hub.token}\r\nConnection: Upgrade\r\nUpgrade: outpost-stream\r\n\r\n`);
    await waitFor(() => answer.includes('"type":"opened"'), { timeoutMs: 20_000, message: 'the stream opened' });
    assert.match(answer, /^HTTP\/1\.1 101 .*\r\nUpgrade: outpost-stream\r\n/s);
    socket.write(Buffer.from([9, 0, 0, 0, 1, 0x78]));
    await closed;
    const after = await exec(cluster, ['shell', '--', 'sh', '-c', 'echo still here']);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, 'still here\n');
  });

  test('through a TLS-terminating proxy (https://): exec and its exit code over the outpost-stream upgrade', { skip: hasOpenssl ? false : 'openssl not installed' }, async () => {
    const hub = cluster.requireHub();
    const certDir = mkdtempSync(join(tmpdir(), 'outpost-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'proxy.key', '-out', 'proxy.crt', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { cwd: certDir, stdio: 'pipe', timeout: 20_000 });
    // The proxy: TLS in, plain TCP to the hub (what nginx or a cloud load balancer does).
    const proxy = createTlsServer({ key: readFileSync(join(certDir, 'proxy.key')), cert: readFileSync(join(certDir, 'proxy.crt')) }, (tls) => {
      const plain = connect({ host: '127.0.0.1', port: Number(new URL(hub.url).port) });
      tls.on('error', () => plain.destroy());
      plain.on('error', () => tls.destroy());
      tls.pipe(plain).pipe(tls);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const env = { OUTPOST_SERVER: `https://localhost:${(proxy.address() as { port: number }).port}`, OUTPOST_TOKEN: hub.token, OUTPOST_HUB_DATA: '', NODE_EXTRA_CA_CERTS: join(certDir, 'proxy.crt') };
      const r = await runCli(['exec', 'shell', '-i', '--', 'sh', '-c', 'cat; echo over-tls; exit 6'], env, 'piped in\n');
      assert.equal(r.code, 6, r.stderr);
      assert.equal(r.stdout, 'piped in\nover-tls\n');
      const refused = await runCli(['exec', 'nosuch', '--', 'true'], env);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^error: app nosuch not found/);
    } finally {
      proxy.close();
      rmSync(certDir, { recursive: true, force: true });
    }
  });

  test('a proxy that passes only WebSocket upgrades: the refusal names OUTPOST_TUNNEL_PROTOCOL, and with =websocket exec works', async () => {
    const hub = cluster.requireHub();
    const hubPort = Number(new URL(hub.url).port);
    // Like a strict load balancer: any Upgrade but websocket gets a plain 400; the rest is piped.
    const proxy = createNetServer((client) => {
      let head = Buffer.alloc(0);
      client.on('error', () => undefined);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        client.off('data', onData);
        const upgrade = /\r\nupgrade:\s*([^\r\n]*)/i.exec(head.subarray(0, end).toString('latin1'))?.[1]?.trim().toLowerCase();
        if (upgrade !== undefined && upgrade !== 'websocket') {
          client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request');
          return;
        }
        const up = connect({ host: '127.0.0.1', port: hubPort });
        up.on('error', () => client.destroy());
        up.write(head);
        client.pipe(up).pipe(client);
      };
      client.on('data', onData);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const env = { OUTPOST_SERVER: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, OUTPOST_TOKEN: hub.token, OUTPOST_HUB_DATA: '' };
      const refused = await runCli(['exec', 'shell', '--', 'true'], env);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /HTTP 400 to the outpost-stream upgrade: .*set OUTPOST_TUNNEL_PROTOCOL=websocket/);
      const r = await runCli(['exec', 'shell', '-i', '--', 'sh', '-c', 'cat; exit 4'], { ...env, OUTPOST_TUNNEL_PROTOCOL: 'websocket' }, 'over websocket\n');
      assert.equal(r.code, 4, r.stderr);
      assert.equal(r.stdout, 'over websocket\n');
      const bad = await runCli(['exec', 'shell', '--', 'true'], { ...env, OUTPOST_TUNNEL_PROTOCOL: 'pigeon' });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /OUTPOST_TUNNEL_PROTOCOL must be outpost-stream or websocket, got "pigeon"/);
    } finally {
      proxy.close();
    }
  });

  test('the node disconnected, and an agent killed during an exec: clear errors, the CLI does not hang', async () => {
    const running = startExec(cluster, ['shell', '--', 'sh', '-c', 'echo started; sleep 60', marker]);
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
