import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ProcessTemplate } from '../../edge-agent/runtime/types.js';
import type { InstanceStatus } from '../../shared/api/instance.js';
import { shortHash } from '../../shared/hash.js';
import { silentLogger } from '../../shared/logger.js';
import { ProcessRuntime, type DesiredInstance, type RuntimeEvent } from '../../edge-agent/runtime/process-runtime.js';
import { pause, waitFor } from '../helpers/wait.js';
import { freePort } from '../../shared/free-port.js';

// Probes run by the real process runtime on real processes. Probe periods are whole seconds
// (schema), so each test takes a few seconds; the waits are bounded, the assertions untimed.

const root = mkdtempSync(join(tmpdir(), 'outpost-probes-it-'));
const runtimes: ProcessRuntime[] = [];
const databases: Database.Database[] = [];
const servers: Server[] = [];
const pids = new Set<number>();

interface Harness {
  dir: string;
  runtime: ProcessRuntime;
  events: RuntimeEvent[];
  statuses: Array<{ name: string; status: InstanceStatus }>;
}

async function harness(name: string, share?: Harness): Promise<Harness> {
  const dir = share?.dir ?? join(root, name);
  mkdirSync(dir, { recursive: true });
  const db = new Database(join(dir, 'agent.db'));
  databases.push(db);
  const runtime = new ProcessRuntime({ db, log: silentLogger() }, { logDir: join(dir, 'logs'), workDir: join(dir, 'work'), pollIntervalMs: 50, restartBackoff: { initialMs: 50, maxMs: 200 } });
  runtimes.push(runtime);
  const h: Harness = { dir, runtime, events: [], statuses: [] };
  runtime.onStatus((instance, status) => {
    if (status.pid) pids.add(status.pid);
    h.statuses.push({ name: instance, status });
  });
  runtime.onEvent((event) => h.events.push(event));
  await runtime.start();
  return h;
}

function desired(name: string, template: ProcessTemplate): DesiredInstance {
  return { name, template, templateHash: shortHash(template) };
}

function status(h: Harness, name: string): InstanceStatus | undefined {
  return h.runtime.statuses().get(name);
}

function events(h: Harness, reason: string, instance: string): RuntimeEvent[] {
  return h.events.filter((e) => e.reason === reason && e.instance === instance);
}

/** A node HTTP server as the instance: /healthz answers 200 while READY_FILE exists, 503 otherwise. */
function webServer(port: number, readyFile: string, probe: Partial<ProcessTemplate> = {}): ProcessTemplate {
  const script = `const fs = require('fs');
require('http').createServer((req, res) => { res.statusCode = fs.existsSync(process.env.READY_FILE) ? 200 : 503; res.end(); })
  .listen(Number(process.env.PORT), '127.0.0.1');`;
  return { command: process.execPath, args: ['-e', script], env: { PORT: String(port), READY_FILE: readyFile }, terminationGracePeriodSeconds: 1, ...probe };
}

after(async () => {
  for (const runtime of runtimes) {
    if (runtime.state === 'running') await runtime.stopAllInstances();
    await runtime.stop();
  }
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const db of databases) db.close();
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

describe('probes in the process runtime', () => {
  test('readiness: ready follows the HTTP probe while the process runs, and is false after it exits', async () => {
    const h = await harness('readiness');
    const port = await freePort();
    const readyFile = join(h.dir, 'ready');
    h.runtime.reconcile([desired('web', webServer(port, readyFile, { readinessProbe: { httpGet: { port, path: '/healthz' }, periodSeconds: 1, failureThreshold: 1 } }))]);
    const first = status(h, 'web');
    assert.equal(first?.phase, 'Running');
    assert.equal(first?.ready, false, 'not ready before the first success');
    assert.equal(first?.message, 'readiness: not probed yet');
    await waitFor(() => status(h, 'web')?.message === `readiness: GET http://127.0.0.1:${port}/healthz: HTTP 503`, { timeoutMs: 8000, message: 'the 503 in the status' });

    writeFileSync(readyFile, '');
    await waitFor(() => status(h, 'web')?.ready, { timeoutMs: 5000, message: 'ready' });
    const ready = status(h, 'web');
    assert.equal(ready?.message, undefined);
    assert.ok(h.statuses.some((s) => s.name === 'web' && s.status.ready), 'the flip went through onStatus');

    unlinkSync(readyFile);
    await waitFor(() => status(h, 'web')?.ready === false, { timeoutMs: 5000, message: 'not ready again' });
    assert.equal(status(h, 'web')?.phase, 'Running');
    assert.match(events(h, 'Unhealthy', 'web')[0]?.message ?? '', /^readiness probe failed: GET http:\/\/127\.0\.0\.1:\d+\/healthz: HTTP 503$/);

    writeFileSync(readyFile, '');
    await waitFor(() => status(h, 'web')?.ready, { timeoutMs: 5000, message: 'ready once more' });
    const pid = status(h, 'web')?.pid ?? 0;
    const seen = h.statuses.length;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => {
      const s = status(h, 'web');
      return s?.ready && s.pid !== pid;
    }, { timeoutMs: 8000, message: 'restarted and ready' });
    const after = h.statuses.slice(seen).filter((s) => s.name === 'web').map((s) => [s.status.phase, s.status.ready]);
    assert.deepEqual(after[0], ['Failed', false], 'not ready once the process exited');
    assert.deepEqual(after.at(-1), ['Running', true]);
    assert.ok(after.some(([phase, r]) => phase === 'Running' && r === false), 'the new process is not ready before its first success');
    assert.equal(status(h, 'web')?.restarts, 1);
  });

  test('liveness: failureThreshold failures kill the process and restart it (a restart, an Unhealthy event); the probe starts over', async () => {
    const h = await harness('liveness');
    // The exec probe runs in the instance's working directory: a file "sick" there fails it.
    const probe = { exec: { command: ['sh', '-c', 'test ! -e sick || { echo "sick since $(cat sick)"; exit 1; }'] }, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 2 };
    h.runtime.reconcile([
      desired('worker', { command: 'sh', args: ['-c', 'exec sleep 30'], terminationGracePeriodSeconds: 1, livenessProbe: probe }),
      desired('once', { command: 'sh', args: ['-c', 'exec sleep 30'], terminationGracePeriodSeconds: 1, restartPolicy: 'Never', livenessProbe: probe }),
    ]);
    const before = status(h, 'worker');
    assert.equal(before?.ready, true, 'a liveness probe alone does not hold back ready');
    await pause(1500);
    writeFileSync(join(h.dir, 'work', 'worker', 'sick'), 'monday\n');
    writeFileSync(join(h.dir, 'work', 'once', 'sick'), 'tuesday\n');
    await waitFor(() => events(h, 'Unhealthy', 'worker').length === 1, { timeoutMs: 8000, message: 'Unhealthy event' });
    unlinkSync(join(h.dir, 'work', 'worker', 'sick'));
    assert.equal(events(h, 'Unhealthy', 'worker')[0]?.message, 'liveness probe failed: exec ["sh","-c","test ! -e sick || { echo \\"sick since $(cat sick)\\"; exit 1; }"] exited 1: sick since monday');
    const restarted = await waitFor(() => {
      const s = status(h, 'worker');
      return s?.phase === 'Running' && s.pid !== before?.pid && s;
    }, { timeoutMs: 8000, message: 'restart' });
    assert.equal(restarted.restarts, 1);
    const order = h.events.filter((e) => e.instance === 'worker').map((e) => e.reason);
    assert.deepEqual(order.slice(0, 5), ['Started', 'Unhealthy', 'Stopped', 'BackOff', 'Started']);
    assert.ok(h.statuses.some((s) => s.name === 'worker' && s.status.phase === 'Failed' && s.status.message?.startsWith('liveness probe failed: ')));

    // Healthy again: no further restart.
    await pause(2500);
    assert.equal(status(h, 'worker')?.restarts, 1);
    assert.equal(status(h, 'worker')?.pid, restarted.pid);

    // restartPolicy Never: killed, not restarted.
    await waitFor(() => status(h, 'once')?.phase === 'Failed', { timeoutMs: 5000, message: 'once failed' });
    assert.match(status(h, 'once')?.message ?? '', /^liveness probe failed: .* exited 1: sick since tuesday$/);
    assert.equal(status(h, 'once')?.ready, false);
    assert.equal(status(h, 'once')?.restarts, 0);
  });

  test('an adopted process gets its probes; probes stop when the instance is removed', async () => {
    let requests = 0;
    let healthy = true;
    const server = createHttpServer((_req, res) => {
      requests++;
      res.statusCode = healthy ? 200 : 500;
      res.end();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const template: ProcessTemplate = {
      command: 'sleep',
      args: ['30'],
      terminationGracePeriodSeconds: 1,
      readinessProbe: { httpGet: { port, path: '/ready' }, periodSeconds: 1 },
      livenessProbe: { tcpSocket: { port }, periodSeconds: 1 },
    };
    const a = await harness('adopt');
    a.runtime.reconcile([desired('sleeper', template)]);
    await waitFor(() => status(a, 'sleeper')?.ready, { timeoutMs: 5000, message: 'ready under the first agent' });
    const pid = status(a, 'sleeper')?.pid;
    await a.runtime.stop();

    healthy = false;
    const b = await harness('adopt', a);
    assert.equal(events(b, 'Adopted', 'sleeper').length, 1);
    assert.equal(status(b, 'sleeper')?.pid, pid);
    assert.equal(status(b, 'sleeper')?.ready, false, 'an adopted process is not ready before its probe passes');
    b.runtime.reconcile([desired('sleeper', template)]);
    await waitFor(() => status(b, 'sleeper')?.message?.endsWith('/ready: HTTP 500'), { timeoutMs: 5000, message: 'probed after adoption' });
    healthy = true;
    await waitFor(() => status(b, 'sleeper')?.ready, { timeoutMs: 5000, message: 'ready after adoption' });

    b.runtime.reconcile([]);
    await waitFor(() => events(b, 'Removed', 'sleeper').length === 1, { timeoutMs: 5000, message: 'removed' });
    const count = requests;
    await pause(2200);
    assert.equal(requests, count, 'no probe after removal');
  });
});
