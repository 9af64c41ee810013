// The container supervisor's decisions against a fake engine (pure logic, fast); the real engine
// paths are in test/integration/container-runtime.test.ts.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppTemplate } from '../../shared/api/workload.js';
import { silentLogger } from '../../shared/logger.js';
import { ContainerCounterStore } from '../../edge-agent/runtime/container/container-counters.js';
import { ContainerRuntime, type ContainerRuntimeOptions } from '../../edge-agent/runtime/container/container-runtime.js';
import { EngineError, type DockerEngine } from '../../edge-agent/runtime/container/docker-engine.js';
import type { ContainerCreateBody, ContainerInspect, ContainerSummary } from '../../edge-agent/runtime/container/engine-types.js';
import type { RuntimeEvent } from '../../edge-agent/runtime/types.js';
import type { DesiredContainer } from '../../edge-agent/runtime/workload-runtime.js';
import Database from 'better-sqlite3';
import { waitFor } from '../helpers/wait.js';

const ZERO = '0001-01-01T00:00:00Z';

/** An engine in memory: what the supervisor calls, with knobs to make calls fail or hang. */
class FakeEngine {
  readonly socketPath = '/fake/engine.sock';
  readonly containers = new Map<string, ContainerInspect & { created: number }>();
  readonly calls: string[] = [];
  stopDelayMs = 0;
  failStop = false;
  execFails: EngineError | null = null;
  execResult = { exitCode: 0, output: '' };
  execs = 0;
  listDelayMs = 0;
  /** Set: pulls hang until aborted (a registry that stalls). */
  pullHangs = false;
  private n = 0;

  async listContainers(): Promise<ContainerSummary[]> {
    if (this.listDelayMs > 0) await new Promise((r) => setTimeout(r, this.listDelayMs));
    return [...this.containers.values()].map((c) => ({ Id: c.Id, Labels: c.Config?.Labels ?? null, State: c.State.Running ? 'running' : 'exited', Created: c.created }));
  }
  async inspectContainer(id: string): Promise<ContainerInspect | undefined> {
    const c = this.containers.get(id) ?? [...this.containers.values()].find((x) => x.Name === id);
    return c ? structuredClone(c) : undefined;
  }
  async createContainer(name: string, body: ContainerCreateBody): Promise<string> {
    this.calls.push(`create ${name}`);
    const Id = `c${++this.n}`.padEnd(64, '0');
    this.containers.set(Id, { Id, Name: name, created: this.n, Config: { Labels: body.Labels }, State: { Running: false, Pid: 0, StartedAt: ZERO, FinishedAt: ZERO, ExitCode: 0 }, NetworkSettings: { IPAddress: '10.0.0.2' } });
    return Id;
  }
  async startContainer(id: string): Promise<void> {
    this.calls.push('start');
    const c = this.containers.get(id);
    if (c) c.State = { ...c.State, Running: true, Pid: 1000 + this.n, StartedAt: new Date().toISOString() };
  }
  async stopContainer(id: string): Promise<void> {
    this.calls.push('stop');
    if (this.failStop) throw new EngineError('POST /stop: connect ENOENT', 0);
    await new Promise((r) => setTimeout(r, this.stopDelayMs));
    this.crash(id, 143);
  }
  async removeContainer(id: string): Promise<void> {
    this.calls.push('remove');
    this.containers.delete(id);
  }
  async hasImage(): Promise<boolean> {
    return !this.pullHangs;
  }
  async pullImage(_ref: string, _progress: unknown, signal?: AbortSignal): Promise<void> {
    this.calls.push('pull');
    if (!this.pullHangs) return;
    await new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new EngineError('pull aborted', 0))));
  }
  async followLogs(_id: string, _since: string, _data: unknown, signal: AbortSignal): Promise<void> {
    await new Promise((r) => signal.addEventListener('abort', r));
  }
  async exec(): Promise<{ exitCode: number; output: string }> {
    this.execs++;
    if (this.execFails) throw this.execFails;
    return this.execResult;
  }
  close(): void {}

  crash(id: string, code: number): void {
    const c = this.containers.get(id);
    if (c) c.State = { ...c.State, Running: false, ExitCode: code, FinishedAt: new Date().toISOString() };
  }
  running(): ContainerInspect[] {
    return [...this.containers.values()].filter((c) => c.State.Running);
  }
}

const dirs: string[] = [];
const runtimes: ContainerRuntime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function harness(options: Partial<ContainerRuntimeOptions> = {}, with_: { engine?: FakeEngine; db?: Database.Database } = {}) {
  const engine = with_.engine ?? new FakeEngine();
  const dir = mkdtempSync(join(tmpdir(), 'outpost-ctr-unit-'));
  dirs.push(dir);
  const runtime = new ContainerRuntime({ engine: engine as unknown as DockerEngine, log: silentLogger(), ...(with_.db ? { db: with_.db } : {}) }, { node: 'n1', logDir: join(dir, 'logs'), pollIntervalMs: 50, ...options });
  runtimes.push(runtime);
  const events: RuntimeEvent[] = [];
  runtime.onEvent((e) => events.push(e));
  const status = (name: string) => runtime.statuses().get(name);
  const trail = (name: string) => `status ${JSON.stringify(status(name))}; calls ${engine.calls.join(', ')}; events ${events.map((e) => `${e.reason}: ${e.message}`).join(' | ')}`;
  return { engine, runtime, events, status, trail };
}

function want(name: string, template: AppTemplate, templateHash: string): DesiredContainer {
  return { name, template, templateHash, configEnv: {}, configDirs: {} };
}

const BASE: AppTemplate = { containers: [{ image: 'img:1' }], terminationGracePeriodSeconds: 1 };

describe('container supervisor (fake engine)', () => {
  test('an instance wanted again while its removal is under way runs again', async () => {
    const { engine, runtime, status, trail } = harness();
    await runtime.start();
    const d = want('web-0', BASE, 'h1');
    runtime.reconcile([d]);
    await waitFor(() => status('web-0')?.phase === 'Running', { message: 'running' });
    engine.stopDelayMs = 300;
    runtime.reconcile([]);
    await waitFor(() => engine.calls.includes('stop'), { message: 'stopping' });
    runtime.reconcile([d]);
    await waitFor(() => engine.calls.filter((c) => c === 'start').length === 2, { message: `started again; ${trail('web-0')}` });
    await waitFor(() => status('web-0')?.phase === 'Running', { message: `running again; ${trail('web-0')}` });
    assert.equal(engine.running().length, 1);
  });

  test('a stop that fails after a liveness failure is retried; the container is restarted once the engine is back', async () => {
    const { engine, runtime, events, status, trail } = harness({ restartBackoff: { initialMs: 50, maxMs: 100 } });
    await runtime.start();
    const probe = { exec: { command: ['check'] }, periodSeconds: 1, failureThreshold: 1 };
    runtime.reconcile([want('db-0', { ...BASE, containers: [{ image: 'img:1', livenessProbe: probe }] }, 'h1')]);
    await waitFor(() => status('db-0')?.phase === 'Running', { message: 'running' });
    engine.failStop = true;
    engine.execResult = { exitCode: 1, output: 'hung' };
    await waitFor(() => engine.calls.filter((c) => c === 'stop').length >= 1 && events.some((e) => e.reason === 'EngineError'), { timeoutMs: 5000, message: `a failed stop; ${trail('db-0')}` });
    engine.failStop = false;
    await waitFor(() => (status('db-0')?.restarts ?? 0) >= 1, { timeoutMs: 10_000, message: `restarted after the engine came back; ${trail('db-0')}` });
    assert.ok(events.some((e) => e.reason === 'Exited' && /liveness probe failed/.test(e.message)), trail('db-0'));
  });

  test('an exec probe the engine cannot run (unreachable, 5xx) is not counted: no restart of a healthy container', async () => {
    const { engine, runtime, events, status, trail } = harness();
    await runtime.start();
    const probe = { exec: { command: ['check'] }, periodSeconds: 1, failureThreshold: 1 };
    runtime.reconcile([want('db-0', { ...BASE, containers: [{ image: 'img:1', livenessProbe: probe, readinessProbe: probe }] }, 'h1')]);
    await waitFor(() => status('db-0')?.ready === true, { message: 'ready' });
    engine.execFails = new EngineError('POST /exec: connect ECONNREFUSED', 0);
    const before = engine.execs;
    await waitFor(() => engine.execs >= before + 2, { timeoutMs: 5000, message: 'two probe attempts against an unreachable engine' });
    engine.execFails = new EngineError('POST /exec: internal error', 500);
    await waitFor(() => engine.execs >= before + 4, { timeoutMs: 5000, message: 'two attempts answered 500' });
    assert.equal(status('db-0')?.ready, true, trail('db-0'));
    assert.equal(status('db-0')?.restarts, 0);
    assert.ok(!events.some((e) => e.reason === 'Unhealthy'), trail('db-0'));
    engine.execFails = null;
    engine.execResult = { exitCode: 1, output: 'down' };
    await waitFor(() => events.some((e) => e.reason === 'Unhealthy'), { timeoutMs: 5000, message: 'a real failure still counts' });
  });

  test('a stalled pull is given up after pullStallTimeoutMs, as a failed pull', async () => {
    const { engine, runtime, events, status, trail } = harness({ pullStallTimeoutMs: 200, restartBackoff: { initialMs: 60_000 } });
    await runtime.start();
    engine.pullHangs = true;
    runtime.reconcile([want('w-0', BASE, 'h1')]);
    await waitFor(() => events.some((e) => e.reason === 'FailedPull' && /no progress for/.test(e.message)), { timeoutMs: 5000, message: `the stalled pull failed; ${trail('w-0')}` });
    assert.equal(status('w-0')?.phase, 'Failed');

  });

  test('a removal or a newer template aborts a pull in progress at once', async () => {
    const { engine, runtime, status, trail } = harness({ pullStallTimeoutMs: 600_000 });
    await runtime.start();
    engine.pullHangs = true;
    runtime.reconcile([want('w-1', BASE, 'h1')]);
    await waitFor(() => engine.calls.filter((c) => c === 'pull').length === 1, { message: 'pulling' });
    runtime.reconcile([want('w-1', { ...BASE, containers: [{ image: 'img:2' }] }, 'h2')]);
    await waitFor(() => engine.calls.filter((c) => c === 'pull').length === 2, { message: `the newer template pulls at once; ${trail('w-1')}` });
    assert.equal(status('w-1')?.templateHash, 'h2');
    runtime.reconcile([]);
    await waitFor(() => runtime.statuses().size === 0, { message: `removed while pulling; ${trail('w-1')}` });
    assert.equal(engine.containers.size, 0);
  });

  test('a template change does not wait out the crash-loop back-off of the old template', async () => {
    const { engine, runtime, events, status, trail } = harness({ restartBackoff: { initialMs: 60_000, maxMs: 60_000 } });
    await runtime.start();
    runtime.reconcile([want('w-0', BASE, 'h1')]);
    const first = await waitFor(() => status('w-0')?.phase === 'Running' && status('w-0'), { message: 'running' });
    engine.crash(first.containerId ?? '', 1);
    await waitFor(() => events.some((e) => e.reason === 'BackOff'), { message: `backing off; ${trail('w-0')}` });
    runtime.reconcile([want('w-0', { ...BASE, containers: [{ image: 'img:2' }] }, 'h2')]);
    const next = await waitFor(() => status('w-0')?.phase === 'Running' && status('w-0')?.templateHash === 'h2' && status('w-0'), { timeoutMs: 3000, message: `h2 runs at once; ${trail('w-0')}` });
    assert.notEqual(next.containerId, first.containerId);
  });

  test('hasAdopted is false until the engine was listed; then what runs shows in statuses()', async () => {
    const { engine, runtime, status } = harness();
    const id = await engine.createContainer('outpost-n1-web-0', { Image: 'img:1', Env: [], Labels: { 'outpost.dev/node': 'n1', 'outpost.dev/instance': 'web-0', 'outpost.dev/template-hash': 'h1' }, Tty: false, OpenStdin: false, HostConfig: { RestartPolicy: { Name: 'no' } } });
    await engine.startContainer(id);
    engine.listDelayMs = 300;
    assert.equal(runtime.hasAdopted(), false);
    const started = runtime.start();
    assert.equal(runtime.hasAdopted(), false, 'not before the listing');
    assert.equal(runtime.statuses().size, 0, 'an empty statuses() then says nothing');
    await started;
    await waitFor(() => runtime.hasAdopted(), { message: 'adopted' });
    assert.equal(status('web-0')?.phase, 'Running');
  });

  test('a start the agent made but did not report (killed in between) is reported by the next agent, once', async () => {
    const db = new Database(':memory:');
    const a = harness({}, { db });
    await a.runtime.start();
    a.runtime.reconcile([want('w-0', BASE, 'h1')]);
    const run = await waitFor(() => a.status('w-0')?.phase === 'Running' && a.status('w-0'), { timeoutMs: 3000, message: `running; ${a.trail('w-0')}` });
    const row = () => db.prepare('SELECT unreported_start AS u FROM runtime_containers WHERE name = ?').get('w-0') as { u: string | null };
    assert.equal(row().u, null, 'a start reported in the same step leaves no mark');
    await a.runtime.stop();
    // What a SIGKILL between the engine's start and the Started event leaves.
    db.prepare('UPDATE runtime_containers SET unreported_start = ? WHERE name = ?').run(run.containerId, 'w-0');

    const b = harness({}, { engine: a.engine, db });
    await b.runtime.start();
    await waitFor(() => b.runtime.hasAdopted(), { message: 'adopted' });
    const reasons = b.events.filter((e) => e.instance === 'w-0').map((e) => e.reason);
    assert.deepEqual(reasons.slice(0, 2), ['Started', 'Adopted'], b.trail('w-0'));
    const started = b.events.find((e) => e.reason === 'Started');
    const inspect = await a.engine.inspectContainer(run.containerId ?? '');
    assert.deepEqual(started?.process, { pid: inspect?.State.Pid, startedAt: inspect?.State.StartedAt, edge: 'start' }, 'the same identity as the original start: the hub drops a duplicate');
    assert.equal(row().u, null);
    await b.runtime.stop();

    const c = harness({}, { engine: a.engine, db });
    await c.runtime.start();
    await waitFor(() => c.runtime.hasAdopted(), { message: 'adopted again' });
    assert.deepEqual(c.events.filter((e) => e.instance === 'w-0').map((e) => e.reason), ['Adopted']);
    db.close();
  });

  test('a runtime.db from before the unreported-start column gets it, counters kept', () => {
    const db = new Database(':memory:');
    db.exec("CREATE TABLE runtime_containers (name TEXT PRIMARY KEY, restarts INTEGER NOT NULL DEFAULT 0, crashes INTEGER NOT NULL DEFAULT 0) STRICT; INSERT INTO runtime_containers VALUES ('w-0', 3, 2)");
    const store = new ContainerCounterStore(db);
    assert.deepEqual(store.get('w-0'), { restarts: 3, crashes: 2 });
    store.save('w-0', { restarts: 4, crashes: 2, unreportedStart: 'abc' });
    assert.deepEqual(store.get('w-0'), { restarts: 4, crashes: 2, unreportedStart: 'abc' });
    db.close();
  });

  test('the poll leaves alone a container with this node\'s label but no valid instance label', async () => {
    const { engine, runtime } = harness();
    await engine.createContainer('someone-elses', { Image: 'x', Env: [], Labels: { 'outpost.dev/node': 'n1', 'outpost.dev/instance': 'Not_A_Name' }, Tty: false, OpenStdin: false, HostConfig: { RestartPolicy: { Name: 'no' } } });
    await runtime.start();
    await waitFor(() => runtime.hasAdopted(), { message: 'adopted' });
    runtime.reconcile([]);
    const listed = engine.calls.length;
    await new Promise((r) => setTimeout(r, 300)); // several polls
    assert.equal(engine.containers.size, 1, 'still there');
    assert.equal(engine.calls.slice(listed).filter((c) => c === 'remove').length, 0);
  });
});
