// The CLI's `outpost exec` as a user runs it against a TestCluster: with pipes, watched while it
// runs, or in a pseudo-terminal (node-pty) for -it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as pty from 'node-pty';
import { repoRoot, runCli, type TestCluster } from './cluster.js';
import { waitFor } from './wait.js';

const cliEnv = (cluster: TestCluster): Record<string, string> => ({ OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' });

/**
 * The CLI's exec, run asynchronously: a spawnSync would stop this process from reading the hub's
 * and agent's log pipes, and a hub blocked on a full pipe cannot relay the stream.
 */
export function exec(cluster: TestCluster, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(['exec', ...args], cliEnv(cluster), input);
}

/** A CLI command as a child whose stdout can be watched while it runs; `done` resolves at its exit (killed after 60 s). */
export function startCli(cluster: TestCluster, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), ...args], { env: { ...process.env, ...cliEnv(cluster), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); }));
  return { child, stdout: () => stdout, done };
}

/** The CLI's exec as a child (see startCli). */
export function startExec(cluster: TestCluster, args: string[]) {
  return startCli(cluster, ['exec', ...args]);
}

/**
 * The CLI in a pseudo-terminal of 100x30, as a person at a terminal runs it. `expect` waits for
 * output matching a pattern (after `from`, an offset into the output), bounded in time.
 */
export function cliInTerminal(cluster: TestCluster, args: string[]) {
  const term = pty.spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), ...args], {
    name: 'xterm', cols: 100, rows: 30, cwd: repoRoot,
    env: { ...process.env, ...cliEnv(cluster) } as Record<string, string>,
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
