import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import type { ProcessTemplate } from '../../edge-agent/runtime/types.js';
import type { InstanceStatus } from '../../shared/api/instance.js';
import { shortHash } from '../../shared/hash.js';
import { silentLogger } from '../../shared/logger.js';
import { ProcessRuntime, type DesiredInstance, type ProcessRuntimeOptions, type RuntimeEvent } from '../../edge-agent/runtime/process-runtime.js';
import { checkProcess, hasProcFs, processGroupMembers, readStartTime } from '../../edge-agent/runtime/proc-stat.js';
import { pause, waitFor } from '../helpers/wait.js';

const root = mkdtempSync(join(tmpdir(), 'outpost-runtime-'));
const procFs = hasProcFs();
const seenPids = new Set<number>();
const runtimes: ProcessRuntime[] = [];
const databases: Database.Database[] = [];

interface Harness {
  dir: string;
  dbFile: string;
  runtime: ProcessRuntime;
  db: Database.Database;
  events: Array<RuntimeEvent & { at: number }>;
  statuses: Array<{ name: string; status: InstanceStatus }>;
}

/** A started runtime on a real SQLite file in its own temp dir (or on `share`'s dir and database). */
async function harness(name: string, options: Partial<ProcessRuntimeOptions> = {}, share?: Harness): Promise<Harness> {
  const dir = share?.dir ?? join(root, name);
  mkdirSync(dir, { recursive: true });
  const dbFile = share?.dbFile ?? join(dir, 'agent.db');
  const db = new Database(dbFile);
  db.pragma('journal_mode = WAL');
  databases.push(db);
  const runtime = new ProcessRuntime(
    { db, log: silentLogger() },
    { logDir: join(dir, 'logs'), pollIntervalMs: 50, restartBackoff: { initialMs: 50, maxMs: 200 }, ...options },
  );
  runtimes.push(runtime);
  const h: Harness = { dir, dbFile, runtime, db, events: [], statuses: [] };
  runtime.onStatus((instance, status) => {
    if (status.pid) seenPids.add(status.pid);
    h.statuses.push({ name: instance, status });
  });
  runtime.onEvent((event) => h.events.push({ ...event, at: Date.now() }));
  await runtime.start();
  return h;
}

function desired(name: string, template: ProcessTemplate): DesiredInstance {
  return { name, template, templateHash: shortHash(template) };
}

function sh(script: string, extra: Partial<ProcessTemplate> = {}): ProcessTemplate {
  return { command: 'sh', args: ['-c', script], terminationGracePeriodSeconds: 1, ...extra };
}

function running(runtime: ProcessRuntime, name: string): InstanceStatus | undefined {
  const s = runtime.statuses().get(name);
  return s?.phase === 'Running' && s.pid !== undefined ? s : undefined;
}

function alive(pid: number): boolean {
  return checkProcess(pid, null, procFs) === 'alive';
}

function events(h: Harness, reason: string, instance?: string): RuntimeEvent[] {
  return h.events.filter((e) => e.reason === reason && (instance === undefined || e.instance === instance));
}

/** Asserts the listed fields of `actual` (node 20 has no assert.partialDeepStrictEqual). */
function assertHas(actual: object | undefined, expected: Record<string, unknown>): void {
  assert.ok(actual, 'value expected');
  const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, (actual as Record<string, unknown>)[k]]));
  assert.deepEqual(picked, expected);
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

function row(h: Harness, name: string): { pid: number | null; start_time: number | null; restarts: number } | undefined {
  return h.db.prepare('SELECT pid, start_time, restarts FROM runtime_instances WHERE name = ?').get(name) as
    | { pid: number | null; start_time: number | null; restarts: number }
    | undefined;
}

after(async () => {
  for (const runtime of runtimes) {
    if (runtime.state === 'running') await runtime.stopAllInstances();
    await runtime.stop();
  }
  for (const pid of seenPids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const db of databases) db.close();
  rmSync(root, { recursive: true, force: true });
});

describe('process runtime', () => {
  test('starts an instance: pid alive, output in its log, env and cwd as documented, row recorded', async () => {
    process.env.OUTPOST_TEST_AGENT_SECRET = 'must-not-leak';
    const h = await harness('start', { baseEnv: { OUTPOST_NODE: 'node-1', APP: 'base' } });
    const template = sh('echo "out node=$OUTPOST_NODE app=$APP secret=${OUTPOST_TEST_AGENT_SECRET:-none} cwd=$(pwd)"; echo err-line >&2; exec sleep 30', {
      env: { APP: 'web' },
    });
    h.runtime.reconcile([desired('web', template)]); // spawns synchronously
    delete process.env.OUTPOST_TEST_AGENT_SECRET;
    const status = await waitFor(() => running(h.runtime, 'web'), { message: 'web running' });
    const pid = status.pid ?? 0;
    assert.doesNotThrow(() => process.kill(pid, 0));
    assert.equal(status.ready, true);
    assert.equal(status.templateHash, shortHash(template));
    const log = await waitFor(() => readFileSync(h.runtime.logPath('web'), 'utf8').includes('err-line') && readFileSync(h.runtime.logPath('web'), 'utf8'), {
      message: 'log output',
    });
    assert.match(log, /out node=node-1 app=web secret=none cwd=\S*\/instances\/web\n/);
    assert.deepEqual(row(h, 'web'), { pid, start_time: procFs ? readStartTime(pid) : null, restarts: 0 });

    // Idempotent: the same desired set again starts nothing.
    h.runtime.reconcile([desired('web', template)]);
    h.runtime.reconcile([desired('web', template)]);
    await pause(150);
    assert.equal(running(h.runtime, 'web')?.pid, pid);
    assert.equal(events(h, 'Started', 'web').length, 1);
    assert.deepEqual(
      h.statuses.filter((s) => s.name === 'web').map((s) => s.status.phase),
      ['Pending', 'Running'],
    );
  });

  test('a template change replaces the process: the old one is gone before the new one starts', async () => {
    const h = await harness('replace');
    const file = join(h.dir, 'lifecycle.txt');
    // The old version takes 1.5 s to stop after SIGTERM (well past the 100 ms pause below, even on a
    // loaded machine): a replacement started early would show.
    const version = (v: string) => sh(`echo start ${v} $$ >> ${file}; trap 'sleep 1.5; echo stop ${v} $$ >> ${file}; exit 0' TERM; while true; do sleep 0.05; done`, { terminationGracePeriodSeconds: 5 });
    h.runtime.reconcile([desired('app', version('v1'))]);
    const v1 = await waitFor(() => running(h.runtime, 'app'));
    await waitFor(() => lines(file).length === 1);

    const started = Date.now();
    h.runtime.reconcile([desired('app', version('v2'))]);
    assert.ok(Date.now() - started < 200, 'reconcile does not wait for the stop');
    // Reconciles arriving while the stop is in progress must not start a duplicate.
    h.runtime.reconcile([desired('app', version('v2'))]);
    await pause(100);
    h.runtime.reconcile([desired('app', version('v2'))]);
    assert.equal(h.runtime.statuses().get('app')?.pid, v1.pid, 'the old process is still reported while it stops');

    const v2 = await waitFor(() => {
      const s = running(h.runtime, 'app');
      return s?.templateHash === shortHash(version('v2')) && s;
    });
    await waitFor(() => lines(file).length >= 3);
    await pause(200);
    assert.deepEqual(lines(file), [`start v1 ${v1.pid}`, `stop v1 ${v1.pid}`, `start v2 ${v2.pid}`]);
    assert.notEqual(v2.pid, v1.pid);
    assert.equal(alive(v1.pid ?? 0), false);
    assert.equal(alive(v2.pid ?? 0), true);
    assert.equal(v2.restarts, 0);
    assert.equal(events(h, 'Replaced', 'app').length, 1);
    assert.equal(events(h, 'Stopped', 'app').length, 1);
    assert.equal(events(h, 'Started', 'app').length, 2);
  });

  test('removal sends SIGTERM, then SIGKILL to the whole group after the grace period', async () => {
    const h = await harness('remove');
    h.runtime.reconcile([desired('stubborn', sh('trap "" TERM; sleep 30 & while true; do sleep 0.1; done', { terminationGracePeriodSeconds: 1 }))]);
    const { pid = 0 } = await waitFor(() => running(h.runtime, 'stubborn'));
    await pause(100); // let the shell set its trap
    const started = Date.now();
    h.runtime.reconcile([]);
    assert.ok(Date.now() - started < 200, 'reconcile does not wait for the stop');
    await waitFor(() => events(h, 'Removed', 'stubborn').length === 1, { timeoutMs: 8000, message: 'removal' });
    assert.ok(Date.now() - started >= 900, 'SIGKILL only after the grace period');
    assert.equal(events(h, 'Killed', 'stubborn').length, 1);
    assert.equal(alive(pid), false);
    if (procFs) assert.deepEqual(processGroupMembers(pid), []);
    assert.equal(h.runtime.statuses().has('stubborn'), false);
    assert.equal(row(h, 'stubborn'), undefined);
  });

  test('restart policies: Always restarts after any exit, OnFailure after a failure, Never not at all', async () => {
    const h = await harness('policies');
    const marker = (name: string) => join(h.dir, `${name}.runs`);
    const job = (name: string, exit: string, restartPolicy?: ProcessTemplate['restartPolicy']) =>
      desired(name, sh(`echo run >> ${marker(name)}; ${exit}`, restartPolicy ? { restartPolicy } : {}));
    h.runtime.reconcile([
      job('always-0', 'exit 0'),
      job('onfailure-0', 'exit 0', 'OnFailure'),
      job('onfailure-3', 'exit 3', 'OnFailure'),
      job('never-3', 'exit 3', 'Never'),
      job('never-0', 'exit 0', 'Never'),
      job('never-signal', 'kill -9 $$', 'Never'),
    ]);
    const status = (name: string) => h.runtime.statuses().get(name);
    await waitFor(() => (status('always-0')?.restarts ?? 0) >= 2 && (status('onfailure-3')?.restarts ?? 0) >= 2, { message: 'restarts' });
    await waitFor(() => ['onfailure-0', 'never-3', 'never-0', 'never-signal'].every((n) => status(n)?.phase !== 'Running' && status(n)?.phase !== 'Pending'));
    await pause(300);
    assert.ok(lines(marker('always-0')).length >= 3);
    assert.ok(lines(marker('onfailure-3')).length >= 3);
    assertHas(status('onfailure-0'), { phase: 'Succeeded', exitCode: 0, restarts: 0 });
    assertHas(status('never-3'), { phase: 'Failed', exitCode: 3, signal: null, restarts: 0, message: 'exited with code 3' });
    assertHas(status('never-0'), { phase: 'Succeeded', exitCode: 0, restarts: 0 });
    assertHas(status('never-signal'), { phase: 'Failed', exitCode: null, signal: 'SIGKILL', restarts: 0 });
    for (const n of ['onfailure-0', 'never-3', 'never-0', 'never-signal']) assert.equal(lines(marker(n)).length, 1, n);
    assert.equal(row(h, 'always-0')?.restarts, status('always-0')?.restarts);
  });

  test('crash loops back off exponentially up to maxMs; a long enough run resets the delay', async () => {
    const h = await harness('backoff', { restartBackoff: { initialMs: 100, maxMs: 400 } });
    h.runtime.reconcile([desired('crash', sh('exit 1'))]);
    await waitFor(() => events(h, 'BackOff', 'crash').length >= 5, { timeoutMs: 8000, message: 'five back-offs' });
    const delays = events(h, 'BackOff', 'crash').map((e) => /next in (\S+)$/.exec(e.message)?.[1]);
    assert.deepEqual(delays.slice(0, 5), ['100ms', '200ms', '400ms', '400ms', '400ms']);
    const starts = h.events.filter((e) => e.reason === 'Started' && e.instance === 'crash').map((e) => e.at);
    assert.ok((starts[2] ?? 0) - (starts[1] ?? 0) >= 190, 'the second restart waited 200 ms');
    const backingOff = h.statuses.find((s) => s.name === 'crash' && s.status.message?.includes('back-off restarting, next in 400ms'));
    assertHas(backingOff?.status, { phase: 'Failed', ready: false, exitCode: 1 });
    assert.ok((h.runtime.statuses().get('crash')?.restarts ?? 0) >= 4);

    const slow = await harness('backoff-reset', { restartBackoff: { initialMs: 100, maxMs: 400, resetAfterMs: 150 } });
    slow.runtime.reconcile([desired('slow-crash', sh('sleep 0.3; exit 1'))]);
    await waitFor(() => events(slow, 'BackOff', 'slow-crash').length >= 3, { timeoutMs: 8000, message: 'three back-offs' });
    assert.deepEqual(
      events(slow, 'BackOff', 'slow-crash').slice(0, 3).map((e) => /next in (\S+)$/.exec(e.message)?.[1]),
      ['100ms', '100ms', '100ms'],
    );
  });

  test('a new runtime on the same database adopts the running process, then restarts it when it dies', async () => {
    const a = await harness('adopt');
    const marker = join(a.dir, 'up.txt');
    const d = desired('adoptee', sh(`echo up $$ >> ${marker}; exec sleep 30`));
    a.runtime.reconcile([d]);
    const { pid = 0 } = await waitFor(() => running(a.runtime, 'adoptee'));
    await waitFor(() => lines(marker).length === 1);
    await a.runtime.stop();
    assert.equal(alive(pid), true, 'stop() leaves instances running');

    const b = await harness('adopt', {}, a);
    assertHas(b.runtime.statuses().get('adoptee'), { phase: 'Running', ready: true, pid });
    assert.equal(events(b, 'Adopted', 'adoptee').length, 1);
    b.runtime.reconcile([d]);
    await pause(300);
    assert.equal(running(b.runtime, 'adoptee')?.pid, pid);
    assert.equal(events(b, 'Started').length, 0);
    assert.deepEqual(lines(marker), [`up ${pid}`]);

    process.kill(pid, 'SIGKILL');
    const restarted = await waitFor(() => {
      const s = running(b.runtime, 'adoptee');
      return s && s.pid !== pid && s;
    }, { message: 'restart after external kill' });
    assert.equal(restarted.restarts, 1);
    assert.match(events(b, 'Exited', 'adoptee')[0]?.message ?? '', /exit code unknown/);
    await waitFor(() => lines(marker).length === 2);
    assert.deepEqual(lines(marker), [`up ${pid}`, `up ${restarted.pid}`]);
    assert.equal(row(b, 'adoptee')?.restarts, 1);
  });

  test('an agent killed between saving a pid and reporting its start: the next agent reports the start once', async () => {
    const a = await harness('unreported');
    a.runtime.reconcile([desired('lives', sh('exec sleep 30')), desired('dies', sh('exec sleep 30'))]);
    const lives = await waitFor(() => running(a.runtime, 'lives'));
    const dies = await waitFor(() => running(a.runtime, 'dies'));
    const stateOf = (name: string) => JSON.parse((a.db.prepare('SELECT state_json FROM runtime_instances WHERE name = ?').get(name) as { state_json: string }).state_json) as Record<string, unknown>;
    assert.equal(stateOf('lives').startReported, undefined, 'a start reported in the same tick is recorded as reported');
    await a.runtime.stop();
    // What a SIGKILL right after the pid was saved leaves: the row says the start is unreported.
    for (const name of ['lives', 'dies']) {
      a.db.prepare('UPDATE runtime_instances SET state_json = ? WHERE name = ?').run(JSON.stringify({ ...stateOf(name), startReported: false }), name);
    }
    process.kill(dies.pid ?? 0, 'SIGKILL');
    await waitFor(() => !alive(dies.pid ?? 0));

    const b = await harness('unreported', {}, a);
    const startOf = (name: string) => events(b, 'Started', name).map((e) => e.process);
    assert.deepEqual(startOf('lives'), [{ pid: lives.pid, startedAt: lives.startedAt, edge: 'start' }]);
    assert.deepEqual(events(b, 'Adopted', 'lives').length, 1);
    assert.deepEqual(startOf('dies'), [{ pid: dies.pid, startedAt: dies.startedAt, edge: 'start' }]);
    const end = events(b, 'Exited', 'dies');
    assert.deepEqual(end.map((e) => e.process), [{ pid: dies.pid, startedAt: dies.startedAt, edge: 'end' }]);
    const at = (reason: string) => b.events.findIndex((e) => e.reason === reason && e.instance === 'dies');
    assert.ok(at('Started') < at('Exited'), 'the start is reported before the end');
    await b.runtime.stop();

    // Reported now: a third agent reports no start again.
    const c = await harness('unreported', {}, a);
    assert.equal(events(c, 'Started').length, 0);
    assert.equal(events(c, 'Adopted', 'lives').length, 1);
  });

  test('a process that died (or whose pid was reused) while the agent was down is not adopted', async () => {
    const a = await harness('down');
    a.runtime.reconcile([
      desired('died', sh('exec sleep 30')),
      desired('died-never', sh('exec sleep 30', { restartPolicy: 'Never' })),
      desired('reused', sh('exec sleep 30')),
    ]);
    const died = await waitFor(() => running(a.runtime, 'died'));
    const diedNever = await waitFor(() => running(a.runtime, 'died-never'));
    const reused = await waitFor(() => running(a.runtime, 'reused'));
    await a.runtime.stop();
    for (const s of [died, diedNever, reused]) process.kill(s.pid ?? 0, 'SIGKILL');
    await waitFor(() => [died, diedNever, reused].every((s) => !alive(s.pid ?? 0)));
    // Another process now holds the pid recorded for 'reused': same pid, other start time.
    const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const strangerPid = stranger.pid ?? 0;
    seenPids.add(strangerPid);
    const strangerStart = procFs ? readStartTime(strangerPid) : null;
    a.db.prepare('UPDATE runtime_instances SET pid = ?, start_time = ? WHERE name = ?').run(strangerPid, strangerStart === null ? null : strangerStart + 1, 'reused');

    const b = await harness('down', {}, a);
    for (const name of ['died', 'died-never'].concat(procFs ? ['reused'] : [])) {
      assertHas(b.runtime.statuses().get(name), { phase: 'Failed', ready: false, exitCode: null, message: 'exited while the agent was down (exit code unknown)' });
    }
    assert.equal(events(b, 'Adopted').length, procFs ? 0 : 1);
    if (!procFs) return; // without /proc a reused pid cannot be told apart
    b.runtime.reconcile([
      desired('died', sh('exec sleep 30')),
      desired('died-never', sh('exec sleep 30', { restartPolicy: 'Never' })),
      desired('reused', sh('exec sleep 30')),
    ]);
    const newDied = await waitFor(() => running(b.runtime, 'died'));
    const newReused = await waitFor(() => running(b.runtime, 'reused'));
    assert.equal(newDied.restarts, 1);
    assert.notEqual(newReused.pid, strangerPid);
    await pause(200);
    assert.equal(b.runtime.statuses().get('died-never')?.phase, 'Failed');
    assert.equal(alive(strangerPid), true, 'a process that reused the pid is left alone');
    stranger.kill('SIGKILL');
  });

  test('instances survive the agent being SIGKILLed and the next agent adopts them', async () => {
    const dir = join(root, 'agent-kill');
    mkdirSync(dir, { recursive: true });
    const dbFile = join(dir, 'agent.db');
    const logDir = join(dir, 'logs');
    const require = createRequire(import.meta.url);
    const url = (rel: string) => new URL(rel, import.meta.url).href;
    const agentFile = join(dir, 'agent.mts');
    writeFileSync(
      agentFile,
      `import Database from ${JSON.stringify(pathToFileURL(require.resolve('better-sqlite3')).href)};
import { ProcessRuntime } from ${JSON.stringify(url('../../edge-agent/runtime/process-runtime.ts'))};
import { silentLogger } from ${JSON.stringify(url('../../shared/logger.ts'))};
const [dbFile, logDir, desired] = process.argv.slice(2);
const runtime = new ProcessRuntime({ db: new Database(dbFile), log: silentLogger() }, { logDir, pollIntervalMs: 50 });
runtime.onStatus((name, s) => { if (s.phase === 'Running') process.stdout.write(JSON.stringify({ pid: s.pid }) + '\\n'); });
await runtime.start();
runtime.reconcile([JSON.parse(desired)]);
setInterval(() => {}, 1000);
`,
    );
    const d = desired('survivor', sh('echo survivor up; exec sleep 30'));
    const agent = spawn(process.execPath, ['--import', 'tsx', agentFile, dbFile, logDir, JSON.stringify(d)], {
      cwd: new URL('../..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    agent.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise((resolve) => agent.once('exit', resolve));
    const pid = await waitFor(() => {
      const line = out.split('\n').find(Boolean);
      return line ? (JSON.parse(line) as { pid: number }).pid : undefined;
    }, { timeoutMs: 15000, message: 'the agent child to start the instance' });
    seenPids.add(pid);
    agent.kill('SIGKILL');
    await exited;
    await pause(100);
    assert.equal(alive(pid), true, 'the instance outlived its agent');
    await waitFor(() => readFileSync(join(logDir, 'survivor', 'current.log'), 'utf8').includes('survivor up'));

    const db = new Database(dbFile);
    databases.push(db);
    const b = await harness('agent-kill', { logDir }, { dir, dbFile } as Harness);
    assertHas(b.runtime.statuses().get('survivor'), { phase: 'Running', pid });
    b.runtime.reconcile([d]);
    await pause(200);
    assert.equal(running(b.runtime, 'survivor')?.pid, pid);
    await b.runtime.stopAllInstances();
    assert.equal(alive(pid), false);
    db.close();
  });

  test('a spawn failure gives Failed with a clear message, follows the policy and never crashes the agent', async () => {
    const h = await harness('spawn-fail');
    const notExecutable = join(h.dir, 'not-executable.sh');
    writeFileSync(notExecutable, '#!/bin/sh\necho hi\n');
    chmodSync(notExecutable, 0o644);
    h.runtime.reconcile([
      desired('missing', { command: 'no-such-command-outpost', restartPolicy: 'Never' }),
      desired('missing-always', { command: 'no-such-command-outpost' }),
      desired('no-exec', { command: notExecutable, restartPolicy: 'Never' }),
      desired('bad-cwd', { command: 'sleep', args: ['1'], workingDir: join(h.dir, 'nope'), restartPolicy: 'Never' }),
    ]);
    const status = (name: string) => h.runtime.statuses().get(name);
    await waitFor(() => status('missing')?.phase === 'Failed' && status('no-exec')?.phase === 'Failed' && status('bad-cwd')?.phase === 'Failed');
    assert.deepEqual(status('missing'), { phase: 'Failed', ready: false, restarts: 0, templateHash: shortHash({ command: 'no-such-command-outpost', restartPolicy: 'Never' }), message: 'command not found: no-such-command-outpost' });
    assertHas(status('no-exec'), { message: `permission denied: ${notExecutable}` });
    assertHas(status('bad-cwd'), { message: `working directory not found: ${join(h.dir, 'nope')}` });
    assert.equal(events(h, 'FailedStart', 'missing').length, 1);
    await waitFor(() => (status('missing-always')?.restarts ?? 0) >= 2, { message: 'retries of a missing command' });
    assert.match(status('missing-always')?.message ?? '', /^command not found: no-such-command-outpost(; back-off restarting, next in \S+)?$/);
    assert.ok(events(h, 'BackOff', 'missing-always').length >= 2);

    // The runtime still works.
    h.runtime.reconcile([desired('fine', sh('exec sleep 30'))]);
    await waitFor(() => running(h.runtime, 'fine'));
    await waitFor(() => h.runtime.statuses().size === 1, { message: 'failed instances removed' });
  });

  test('log rotation by copy-then-truncate keeps at most logFiles rotated files', async () => {
    const h = await harness('logs', { logMaxBytes: 2000, logFiles: 2 });
    h.runtime.reconcile([desired('chatty', sh('i=0; while true; do i=$((i+1)); echo "line $i 0123456789012345678901234567890123456789"; sleep 0.005; done'))]);
    await waitFor(() => events(h, 'LogRotated', 'chatty').length >= 4, { timeoutMs: 15000, message: 'four rotations' });
    const dir = join(h.dir, 'logs', 'chatty');
    assert.deepEqual(readdirSync(dir).sort(), ['current.log', 'current.log.1', 'current.log.2']);
    const rotated = readFileSync(join(dir, 'current.log.1'), 'utf8');
    assert.match(rotated, /^line \d+ /);
    assert.ok(rotated.length > 2000);
    await pause(100);
    // O_APPEND: after the truncation the child writes at offset 0, not at its old offset (no hole of NULs).
    const current = readFileSync(h.runtime.logPath('chatty'), 'utf8');
    assert.equal(current.includes('\0'), false);
    assert.ok(current.length < 50_000);
  });
});
