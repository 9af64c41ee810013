// `npm start` as a newcomer runs it: hub, two agents, the sample app; Ctrl-C stops everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Instance } from '../../shared/api/index.js';
import { pidAlive, repoRoot, runCli } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

/** Whether any process still has `dir` in its command line (the hub and agents do). */
function pgrepAlive(dir: string): boolean {
  try {
    execFileSync('pgrep', ['-f', dir]);
    return true;
  } catch {
    return false;
  }
}

test('npm start brings up the playground and Ctrl-C stops all of it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-playground-'));
  const child = spawn('npm', ['start', '--silent'], { cwd: repoRoot, env: { ...process.env, OUTPOST_PLAYGROUND_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<string>((r) => child.once('exit', (code, signal) => r(signal ?? String(code))));
  try {
    await waitFor(() => out.includes('Ctrl-C stops everything'), { timeoutMs: 90_000, intervalMs: 200, message: `playground ready; output:\n${out}` });
    assert.match(out, /hub URL:\s+http:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, new RegExp(`admin token:\\s+${dir}/hub/admin-token`));
    assert.match(out, /npx outpost get nodes/);

    const env = { OUTPOST_HUB_DATA: join(dir, 'hub'), OUTPOST_SERVER: '', OUTPOST_TOKEN: '' };
    const apps = await runCli(['get', 'apps'], env);
    assert.match(apps.stdout, /hello\s+2\/2\s+site-a 1\/1, site-b 1\/1/, apps.stdout + apps.stderr);
    const nodes = await runCli(['get', 'nodes'], env);
    assert.match(nodes.stdout, /edge-a1\s+site-a\s+Ready/);
    assert.match(nodes.stdout, /edge-b1\s+site-b\s+Ready/);
    const instances = JSON.parse((await runCli(['get', 'instances', '-o', 'json'], env)).stdout) as { items: Instance[] };
    const pids = instances.items.map((i) => i.status?.pid ?? 0);
    assert.equal(pids.filter((p) => p > 0 && pidAlive(p)).length, 2);

    process.kill(-(child.pid ?? 0), 'SIGINT'); // Ctrl-C reaches the whole foreground process group
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
    // npm itself may die of the SIGINT (as in a terminal); the playground must have stopped cleanly.
    assert.ok(code === '0' || code === 'SIGINT', `npm start ended with ${code}`);
    await waitFor(() => out.includes('stopped. Data kept in'), { timeoutMs: 30_000, message: `clean stop; output:\n${out}` });
    await waitFor(() => !pgrepAlive(dir), { timeoutMs: 20_000, message: 'hub and agents exited' });
    await waitFor(() => pids.every((p) => !pidAlive(p)), { timeoutMs: 10_000, message: 'sample app processes stopped' });
  } finally {
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL');
    } catch {
      // the group is gone: everything stopped
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
