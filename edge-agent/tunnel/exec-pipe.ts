import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { constants } from 'node:os';
import { ExecChannel, signalExitCode } from '../../shared/protocol/exec.js';
import { lookupCommand } from './command-path.js';
import type { ExecOutcome, ExecOutputSink, ExecSession } from './exec-session.js';

/** A command to run on the host in an instance's environment. */
export interface HostExecRequest {
  command: string[];
  env: Record<string, string>;
  cwd: string;
}

/** After the command exited, how long its output pipes may stay open (a background child holding them). */
const OUTPUT_CLOSE_GRACE_MS = 2_000;

/**
 * Runs a command with pipes: stdin from the client (or /dev/null), stdout and stderr apart. The
 * command leads its own process group, so that `kill()` also ends whatever it started.
 */
export function startPipeExec(req: HostExecRequest, withStdin: boolean, sink: ExecOutputSink): ExecSession {
  const command = req.command[0] as string;
  const problem = precheck(req);
  if (problem) return failedSession(problem, sink);
  const lookup = lookupCommand(command, req.env.PATH, req.cwd);
  if ('code' in lookup) return failedSession(lookup, sink);
  let child: ChildProcess;
  try {
    child = spawn(lookup.path, req.command.slice(1), { argv0: command, cwd: req.cwd, env: req.env, stdio: [withStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
  } catch (err) {
    return failedSession({ code: 126, message: `cannot start ${command}: ${(err as Error).message}` }, sink);
  }
  child.stdout?.on('data', (d: Buffer) => sink(ExecChannel.STDOUT, d));
  child.stderr?.on('data', (d: Buffer) => sink(ExecChannel.STDERR, d));
  // A command that does not read its stdin makes writes fail with EPIPE: not an agent error.
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<ExecOutcome>((resolve) => {
    let graceTimer: NodeJS.Timeout | undefined;
    child.once('error', (err: NodeJS.ErrnoException) => {
      sink(ExecChannel.STDERR, Buffer.from(`cannot start ${command}: ${err.message}\n`));
      resolve({ code: err.code === 'ENOENT' ? 127 : 126 });
    });
    child.once('exit', () => {
      graceTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, OUTPUT_CLOSE_GRACE_MS);
      graceTimer.unref();
    });
    // 'close': exited AND its output pipes are drained, so all output reached the sink.
    child.once('close', (code, signal) => {
      clearTimeout(graceTimer);
      resolve(outcome(code, signal));
    });
  });
  return {
    writeStdin(data, done) {
      const stdin = child.stdin;
      if (!stdin || stdin.destroyed || stdin.writableEnded) return done();
      if (stdin.write(data)) done();
      else {
        const go = () => { stdin.off('drain', go); stdin.off('close', go); done(); };
        stdin.on('drain', go);
        stdin.on('close', go);
      }
    },
    endStdin: () => child.stdin?.end(),
    resize: () => undefined,
    pauseOutput: () => { child.stdout?.pause(); child.stderr?.pause(); },
    resumeOutput: () => { child.stdout?.resume(); child.stderr?.resume(); },
    kill: () => killGroup(child.pid),
    ...(child.pid !== undefined ? { pid: child.pid } : {}),
    exited,
  };
}

/** A session for a command that could not start: the reason on stderr, the shell's exit code. */
export function failedSession(failure: { code: number; message: string }, sink: ExecOutputSink): ExecSession {
  sink(ExecChannel.STDERR, Buffer.from(`${failure.message}\n`));
  return {
    writeStdin: (_data, done) => done(),
    endStdin: () => undefined,
    resize: () => undefined,
    pauseOutput: () => undefined,
    resumeOutput: () => undefined,
    kill: () => undefined,
    exited: Promise.resolve({ code: failure.code }),
  };
}

/** The working directory must exist (the instance's default one is made when it starts). */
export function precheck(req: HostExecRequest): { code: 126; message: string } | undefined {
  try {
    if (statSync(req.cwd).isDirectory()) return undefined;
  } catch {
    // reported below
  }
  return { code: 126, message: `working directory of the instance not found: ${req.cwd}` };
}

export function outcome(code: number | null, signal: NodeJS.Signals | null): ExecOutcome {
  if (signal) return { code: signalExitCode(constants.signals[signal] ?? 0), signal };
  return { code: code ?? 1 };
}

/** SIGKILL to the command's process group (it leads one: detached spawn, or a pty's session). */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined || pid <= 1) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
