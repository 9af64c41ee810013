import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Probe } from '../../shared/api/workload.js';
import type { Clock } from '../../shared/clock.js';
import { Prober, type ProbeResult, type ProbeTarget } from '../../edge-agent/runtime/probes/prober.js';
import { processProbeTarget, runProbeCommand } from '../../edge-agent/runtime/probes/process-target.js';
import { ProbeUnknown } from '../../edge-agent/runtime/probes/check.js';
import { checkProcess, hasProcFs } from '../../edge-agent/runtime/proc-stat.js';
import { waitFor } from '../helpers/wait.js';
// Timers run only when the test advances time; I/O still happens in real time.
import { ManualClock } from '../helpers/manual-clock.js';


/** Lets promise chains and immediate callbacks run (a fake exec's result, the prober's bookkeeping). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** An exec target whose results the test hands out one call at a time. */
function scriptedTarget() {
  const calls: Array<{ command: string[]; timeoutMs: number; resolve: (r: { exitCode: number; output: string }) => void; reject: (e: Error) => void }> = [];
  const target: ProbeTarget = {
    host: '127.0.0.1',
    exec: (command, timeoutMs) => new Promise((resolve, reject) => calls.push({ command, timeoutMs, resolve, reject })),
  };
  const answer = async (exitCode: number, output = '') => {
    const call = calls.at(-1);
    assert.ok(call, 'an exec call is in flight');
    call.resolve({ exitCode, output });
    await settle();
  };
  return { target, calls, answer };
}

function prober(kind: 'readiness' | 'liveness', probe: Probe, target: ProbeTarget, clock: Clock) {
  const changes: ProbeResult[] = [];
  const p = new Prober(kind, probe, target, (r) => changes.push(r), clock);
  probers.push(p);
  return { p, changes };
}

const probers: Prober[] = [];
const servers: Server[] = [];
const root = mkdtempSync(join(tmpdir(), 'outpost-probes-'));

async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; server: Server }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

/** A port that nothing listens on: one the OS gave out and that was closed again. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

after(async () => {
  for (const p of probers) p.stop();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  rmSync(root, { recursive: true, force: true });
});

const EXEC: Probe = { exec: { command: ['check'] } };

describe('Prober timing and thresholds (manual clock, scripted exec)', () => {
  test('readiness starts not passing, liveness passing; the first attempt comes after initialDelaySeconds, then one per periodSeconds', async () => {
    const clock = new ManualClock();
    const s = scriptedTarget();
    const r = prober('readiness', { ...EXEC, initialDelaySeconds: 5 }, s.target, clock);
    const l = prober('liveness', EXEC, scriptedTarget().target, clock);
    assert.deepEqual(r.p.result, { passing: false, message: 'not probed yet' });
    assert.deepEqual(l.p.result, { passing: true, message: 'not probed yet' });
    r.p.start();
    r.p.start(); // a second start does nothing
    clock.advance(4999);
    await settle();
    assert.equal(s.calls.length, 0);
    clock.advance(1);
    await settle();
    assert.equal(s.calls.length, 1);
    assert.deepEqual(s.calls[0]?.command, ['check']);
    assert.equal(s.calls[0]?.timeoutMs, 1000, 'default timeout 1 s');
    await s.answer(0);
    assert.deepEqual(r.changes, [{ passing: true, message: 'exec ["check"] exited 0' }]);
    clock.advance(9999);
    await settle();
    assert.equal(s.calls.length, 1, 'default period 10 s');
    clock.advance(1);
    await settle();
    assert.equal(s.calls.length, 2);
  });

  test('flips only after failureThreshold failures and successThreshold successes; onChange only on flips', async () => {
    const clock = new ManualClock();
    const s = scriptedTarget();
    const r = prober('readiness', { ...EXEC, periodSeconds: 1, failureThreshold: 3, successThreshold: 2 }, s.target, clock);
    r.p.start();
    const step = async (exitCode: number, output = '') => {
      clock.advance(1000);
      await settle();
      await s.answer(exitCode, output);
    };
    clock.advance(0);
    await settle();
    await s.answer(1, '\n  first failure line  \nsecond line\n');
    // Not a flip (it never passed), but the one call that says what fails.
    assert.deepEqual(r.changes, [{ passing: false, message: 'exec ["check"] exited 1: first failure line' }]);
    await step(0);
    assert.equal(r.changes.length, 1, 'one success of two needed');
    assert.equal(r.p.result.passing, false);
    await step(0);
    assert.deepEqual(r.changes[1], { passing: true, message: 'exec ["check"] exited 0' });
    await step(2, 'bad');
    await step(2, 'worse');
    assert.equal(r.changes.length, 2);
    await step(0); // a success resets the failure count
    await step(3);
    await step(3);
    assert.equal(r.changes.length, 2);
    assert.equal(r.p.result.passing, true);
    await step(4, 'third');
    assert.deepEqual(r.changes[2], { passing: false, message: 'exec ["check"] exited 4: third' });
    await step(5, 'still failing');
    assert.equal(r.changes.length, 3, 'no call while the verdict stays');
    assert.deepEqual(r.p.result, { passing: false, message: 'exec ["check"] exited 5: still failing' }, 'result follows the latest attempt');
  });

  test('liveness fails after failureThreshold (default 3) consecutive failures', async () => {
    const clock = new ManualClock();
    const s = scriptedTarget();
    const l = prober('liveness', { ...EXEC, periodSeconds: 2 }, s.target, clock);
    l.p.start();
    for (let i = 0; i < 3; i++) {
      clock.advance(i === 0 ? 0 : 2000);
      await settle();
      await s.answer(1);
      if (i < 2) assert.deepEqual(l.changes, []);
    }
    assert.deepEqual(l.changes, [{ passing: false, message: 'exec ["check"] exited 1' }]);
  });

  test('never two attempts at once; an exec that times out (the target says so) fails, and the schedule goes on', async () => {
    const clock = new ManualClock();
    const s = scriptedTarget();
    const l = prober('liveness', { ...EXEC, periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 1 }, s.target, clock);
    l.p.start();
    clock.advance(0);
    await settle();
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await settle();
    }
    assert.equal(s.calls.length, 1, 'the slow attempt holds back the next');
    assert.equal(s.calls[0]?.timeoutMs, 5000, 'the exec target times the command itself');
    assert.deepEqual(l.changes, []);
    s.calls[0]?.reject(new Error('timed out after 5 s'));
    await settle();
    assert.deepEqual(l.changes, [{ passing: false, message: 'exec ["check"]: timed out after 5 s' }]);
    clock.advance(0); // overdue: the next attempt starts at once
    await settle();
    assert.equal(s.calls.length, 2);
  });

  test('an attempt the target cannot make (ProbeUnknown), or an exec that never returns, is not counted', async () => {
    const clock = new ManualClock();
    const s = scriptedTarget();
    const l = prober('liveness', { ...EXEC, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 }, s.target, clock);
    l.p.start();
    clock.advance(0);
    await settle();
    for (let i = 0; i < 3; i++) {
      s.calls.at(-1)?.reject(new ProbeUnknown('POST /exec: connect ECONNREFUSED'));
      await settle();
      clock.advance(1000);
      await settle();
    }
    assert.equal(s.calls.length, 4);
    assert.deepEqual(l.changes, [], 'the engine being down is no liveness failure');
    clock.advance(61_000); // the target never answers the 4th: given up, uncounted
    await settle();
    assert.deepEqual(l.changes, []);
    clock.advance(0); // overdue: the next attempt starts at once
    await settle();
    assert.equal(s.calls.length, 5, 'and probing goes on');
    await s.answer(1, 'down');
    assert.deepEqual(l.changes, [{ passing: false, message: 'exec ["check"] exited 1: down' }], 'a real failure counts');
  });

  test('initialDelaySeconds counts from the start of the process or container (an adopted one is probed at once)', async () => {
    const clock = new ManualClock();
    clock.advance(100_000);
    const s = scriptedTarget();
    const changes: ProbeResult[] = [];
    const adopted = new Prober('readiness', { ...EXEC, initialDelaySeconds: 30 }, s.target, (r) => changes.push(r), clock, 100_000 - 3_600_000);
    const young = new Prober('readiness', { ...EXEC, initialDelaySeconds: 30 }, s.target, (r) => changes.push(r), clock, 100_000 - 10_000);
    probers.push(adopted, young);
    adopted.start();
    young.start();
    clock.advance(0);
    await settle();
    assert.equal(s.calls.length, 1, 'the long-running one at once');
    clock.advance(19_999);
    await settle();
    assert.equal(s.calls.length, 1);
    clock.advance(1);
    await settle();
    assert.equal(s.calls.length, 2, 'the one started 10 s ago after 20 s more');
  });

  test('a target that throws or rejects is a failed attempt with its message; a throwing listener does not stop the probe', async () => {
    const clock = new ManualClock();
    let n = 0;
    const target: ProbeTarget = {
      host: '127.0.0.1',
      exec: () => {
        n++;
        if (n === 1) throw new Error('docker exec refused');
        return Promise.reject(Object.assign(new Error('connect ENOENT /run/podman.sock'), { code: 'ENOENT' }));
      },
    };
    let calls = 0;
    const p = new Prober('readiness', { ...EXEC, periodSeconds: 1 }, target, () => {
      calls++;
      throw new Error('listener bug');
    }, clock);
    probers.push(p);
    p.start();
    clock.advance(0);
    await settle();
    assert.deepEqual(p.result, { passing: false, message: 'exec ["check"]: docker exec refused' });
    clock.advance(1000);
    await settle();
    assert.deepEqual(p.result, { passing: false, message: 'exec ["check"]: ENOENT' });
    assert.equal(calls, 1);
    assert.equal(n, 2);
  });

  test('stop: no callback for the attempt in flight, no timers left, start does nothing afterwards', async () => {
    const clock = new ManualClock();
    const s = scriptedTarget();
    const r = prober('readiness', { ...EXEC, periodSeconds: 1 }, s.target, clock);
    r.p.start();
    clock.advance(0);
    await settle();
    r.p.stop();
    await s.answer(0);
    assert.deepEqual(r.changes, []);
    assert.equal(r.p.result.passing, false);
    assert.equal(clock.pending, 0);
    r.p.start();
    clock.advance(5000);
    await settle();
    assert.equal(s.calls.length, 1);
  });
});

describe('Prober against real servers (manual clock for the schedule and timeouts)', () => {
  test('httpGet: 200 passes, 503 fails with the status; no keep-alive; default path /', async () => {
    let status = 200;
    const seen: Array<{ url: string | undefined; connection: string | undefined }> = [];
    const { port } = await httpServer((req, res) => {
      seen.push({ url: req.url, connection: req.headers.connection });
      res.statusCode = status;
      res.end('body');
    });
    const clock = new ManualClock();
    const r = prober('readiness', { httpGet: { port, path: '/healthz' }, periodSeconds: 1, failureThreshold: 1 }, { host: '127.0.0.1', exec: () => Promise.reject(new Error('unused')) }, clock);
    r.p.start();
    clock.advance(0);
    await waitFor(() => r.changes.length === 1, { message: 'ready' });
    assert.deepEqual(r.changes[0], { passing: true, message: `GET http://127.0.0.1:${port}/healthz: HTTP 200` });
    status = 503;
    clock.advance(1000);
    await waitFor(() => r.changes.length === 2, { message: 'not ready' });
    assert.deepEqual(r.changes[1], { passing: false, message: `GET http://127.0.0.1:${port}/healthz: HTTP 503` });
    assert.deepEqual(seen, [{ url: '/healthz', connection: 'close' }, { url: '/healthz', connection: 'close' }]);

    status = 302; // 3xx counts as success (not followed)
    const root = prober('readiness', { httpGet: { port } }, { host: '127.0.0.1', exec: () => Promise.reject(new Error('unused')) }, clock);
    root.p.start();
    clock.advance(0);
    await waitFor(() => root.changes.length === 1);
    assert.deepEqual(root.changes[0], { passing: true, message: `GET http://127.0.0.1:${port}/: HTTP 302` });
    assert.equal(seen.at(-1)?.url, '/');
  });

  test('httpGet: an endless body is read only up to a bound; a hanging server times out and its connection is closed', async () => {
    const { port: endless } = await httpServer((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(4096, 'x');
      const timer = setInterval(() => res.write(chunk), 5);
      res.on('close', () => clearInterval(timer));
    });
    let closed = 0;
    let requests = 0;
    const { port: hanging } = await httpServer((req) => {
      requests++;
      req.socket.on('close', () => closed++);
    });
    const clock = new ManualClock();
    const target: ProbeTarget = { host: '127.0.0.1', exec: () => Promise.reject(new Error('unused')) };
    const big = prober('readiness', { httpGet: { port: endless } }, target, clock);
    const hang = prober('liveness', { httpGet: { port: hanging, path: '/slow' }, failureThreshold: 1 }, target, clock);
    big.p.start();
    hang.p.start();
    clock.advance(0);
    await waitFor(() => big.changes.length === 1 && requests === 1, { message: 'the endless body answered, the hanging request arrived' });
    assert.deepEqual(big.changes[0], { passing: true, message: `GET http://127.0.0.1:${endless}/: HTTP 200` });
    assert.deepEqual(hang.changes, []);
    clock.advance(1000);
    await settle();
    assert.deepEqual(hang.changes, [{ passing: false, message: `GET http://127.0.0.1:${hanging}/slow: timed out after 1 s` }]);
    await waitFor(() => closed === 1, { message: 'the timed-out connection closed' });
  });

  test('httpGet and tcpSocket on a closed port: ECONNREFUSED; tcpSocket on a listening port: connected', async () => {
    const port = await closedPort();
    const { port: open } = await httpServer((_req, res) => res.end());
    const clock = new ManualClock();
    const target: ProbeTarget = { host: '127.0.0.1', exec: () => Promise.reject(new Error('unused')) };
    const http = prober('readiness', { httpGet: { port, path: '/x' } }, target, clock);
    const tcp = prober('readiness', { tcpSocket: { port } }, target, clock);
    const up = prober('readiness', { tcpSocket: { port: open, host: '127.0.0.1' } }, { ...target, host: '192.0.2.1' }, clock);
    for (const x of [http, tcp, up]) x.p.start();
    clock.advance(0);
    await waitFor(() => http.changes.length + tcp.changes.length + up.changes.length === 3, { message: 'three verdicts' });
    assert.deepEqual(http.changes, [{ passing: false, message: `GET http://127.0.0.1:${port}/x: ECONNREFUSED` }]);
    assert.deepEqual(tcp.changes, [{ passing: false, message: `connect 127.0.0.1:${port}: ECONNREFUSED` }]);
    assert.deepEqual(up.changes, [{ passing: true, message: `connect 127.0.0.1:${open}: connected` }], 'the probe host wins over the target host');
  });

  test('exec through a process target: exit code and first output line, env and working dir of the instance, command not found', async () => {
    const clock = new ManualClock();
    const target = processProbeTarget({ env: { PATH: process.env.PATH ?? '/usr/bin:/bin', WANT: 'yes' }, cwd: root, clock });
    const fail = prober('readiness', { exec: { command: ['sh', '-c', 'echo boom; echo more >&2; exit 1'] } }, target, clock);
    const ctx = prober('readiness', { exec: { command: ['sh', '-c', `test "$WANT" = yes && test "$(pwd)" = "${root}" && test -z "$HOME"`] } }, target, clock);
    const missing = prober('readiness', { exec: { command: ['no-such-probe-command'] } }, target, clock);
    for (const x of [fail, ctx, missing]) x.p.start();
    clock.advance(0);
    await waitFor(() => fail.changes.length + ctx.changes.length + missing.changes.length === 3, { message: 'three verdicts' });
    assert.deepEqual(fail.changes, [{ passing: false, message: 'exec ["sh","-c","echo boom; echo more >&2; exit 1"] exited 1: boom' }]);
    assert.equal(ctx.changes[0]?.passing, true, ctx.changes[0]?.message);
    assert.deepEqual(missing.changes, [{ passing: false, message: 'exec ["no-such-probe-command"]: command not found: no-such-probe-command' }]);
  });

  test('exec timeout kills the command and what it started (its process group)', async () => {
    const pidFile = join(root, 'probe-child.pid');
    const started = runProbeCommand(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], 300, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: root });
    await assert.rejects(started, /timed out after 0.3 s/);
    const child = Number(readFileSync(pidFile, 'utf8').trim());
    await waitFor(() => checkProcess(child, null, hasProcFs()) !== 'alive', { message: 'the background sleep killed' });
    const sig = await runProbeCommand(['sh', '-c', 'kill -TERM $$'], 5000, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: root });
    assert.equal(sig.exitCode, 128 + 15);
  });

  test('an exec probe in flight is killed with its group when the prober stops (the agent exits)', async () => {
    const pidFile = join(root, 'probe-abort.pid');
    const abort = new AbortController();
    const started = runProbeCommand(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], 60_000, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: root }, abort.signal);
    const child = await waitFor(() => { try { return Number(readFileSync(pidFile, 'utf8').trim()); } catch { return 0; } }, { message: 'the probe started its child' });
    abort.abort();
    await assert.rejects(started, /aborted/);
    await waitFor(() => checkProcess(child, null, hasProcFs()) !== 'alive', { message: 'the background sleep killed on abort' });
  });
});
