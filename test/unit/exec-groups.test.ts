// The records of running exec'd commands (issue 8) and what a starting agent does with them: real
// SQLite in a temp dir, real detached processes. A recorded group whose leader still has its start
// time is ended; a pid that now belongs to another process (start time differs) is never signalled.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { systemClock } from '../../shared/clock.js';
import { silentLogger } from '../../shared/logger.js';
import { checkProcess, hasProcFs } from '../../edge-agent/runtime/proc-stat.js';
import { ExecGroupStore, reapExecGroups } from '../../edge-agent/tunnel/exec-groups.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'outpost-exec-groups-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.pid !== undefined) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
});

function detachedSleep(): ChildProcess & { pid: number } {
  const c = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  children.push(c);
  assert.ok(c.pid);
  return c as ChildProcess & { pid: number };
}

test('records survive a reopen, are forgotten by pid and start time, and a reused pid is left alone', async () => {
  const procFs = hasProcFs();
  const path = join(dir, 'runtime.db');
  const store = new ExecGroupStore(new Database(path));
  const ours = detachedSleep();
  const other = detachedSleep();
  const row = store.record(ours.pid, 'app-0');
  store.record(other.pid, 'app-1');
  // A forget with another start time (an exec that had this pid before) leaves the row.
  store.forget({ pid: ours.pid, start_time: (row.start_time ?? 0) + 1 });
  assert.equal(store.list().length, 2);

  // As a restarted agent sees it; `other` is made to look like a reused pid.
  const db = new Database(path);
  db.prepare('UPDATE tunnel_exec_groups SET start_time = start_time + 7 WHERE pid = ?').run(other.pid);
  const reopened = new ExecGroupStore(db);
  const ended = await reapExecGroups({ store: reopened, log: silentLogger(), clock: systemClock, procFs, signal: new AbortController().signal }, { graceMs: 500 });
  assert.equal(ended, 1);
  await waitFor(() => checkProcess(ours.pid, row.start_time, procFs) === 'gone', { timeoutMs: 5_000, message: 'the recorded exec group ended' });
  if (procFs) assert.equal(checkProcess(other.pid, null, procFs), 'alive', 'a pid with another start time is not signalled');
  assert.deepEqual(reopened.list(), [], 'every handled record is dropped');
});
