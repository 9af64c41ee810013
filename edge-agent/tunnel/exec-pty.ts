import { constants } from 'node:os';
import { ExecChannel, signalExitCode } from '../../shared/protocol/exec.js';
import { lookupCommand } from './command-path.js';
import { failedSession, killGroup, precheck, type HostExecRequest } from './exec-pipe.js';
import type { ExecOutcome, ExecOutputSink, ExecSession } from './exec-session.js';

/** The part of node-pty the agent uses (loaded lazily: an agent without the native module still runs). */
export type PtyModule = typeof import('node-pty');

/** Loads node-pty, or explains why interactive exec is not available on this node. */
export async function loadPty(): Promise<PtyModule | { unavailable: string }> {
  try {
    const mod = (await import('node-pty')) as PtyModule & { default?: PtyModule };
    const api = typeof mod.spawn === 'function' ? mod : mod.default;
    if (!api || typeof api.spawn !== 'function') return { unavailable: 'node-pty has no spawn()' };
    return api;
  } catch (err) {
    return { unavailable: `node-pty cannot be loaded on this node (${(err as Error).message}); reinstall the agent with build tools (npm rebuild node-pty)` };
  }
}

/**
 * Runs a command in a new pseudo-terminal of `cols` x `rows`: it is the session leader of its own
 * process group, sees a terminal on stdin/stdout/stderr (one output channel), and gets SIGWINCH
 * on `resize`. TERM defaults to xterm-256color unless the instance sets one.
 */
export function startPtyExec(pty: PtyModule, req: HostExecRequest, size: { cols: number; rows: number }, sink: ExecOutputSink): ExecSession {
  const command = req.command[0] as string;
  const problem = precheck(req);
  if (problem) return failedSession(problem, sink);
  const lookup = lookupCommand(command, req.env.PATH, req.cwd);
  if ('code' in lookup) return failedSession(lookup, sink);
  let term: ReturnType<PtyModule['spawn']>;
  try {
    term = pty.spawn(lookup.path, req.command.slice(1), { name: req.env.TERM ?? 'xterm-256color', cols: size.cols, rows: size.rows, cwd: req.cwd, env: { TERM: 'xterm-256color', ...req.env }, encoding: null });
  } catch (err) {
    return failedSession({ code: 126, message: `cannot start ${command} in a terminal: ${(err as Error).message}` }, sink);
  }
  // With encoding null node-pty hands over Buffers (its typings say string).
  term.onData((d: string | Buffer) => sink(ExecChannel.STDOUT, typeof d === 'string' ? Buffer.from(d) : d));
  let ended = false;
  const exited = new Promise<ExecOutcome>((resolve) => {
    // node-pty reports the exit once the terminal's output is read (or 200 ms later at most).
    term.onExit(({ exitCode, signal }) => {
      ended = true;
      resolve(signal ? { code: signalExitCode(signal), signal: signalName(signal) } : { code: exitCode });
    });
  });
  return {
    writeStdin(data, done) {
      if (!ended) term.write(data);
      done();
    },
    endStdin: () => undefined,
    resize: (cols, rows) => { if (!ended) term.resize(cols, rows); },
    pauseOutput: () => term.pause(),
    resumeOutput: () => term.resume(),
    kill: () => { if (!ended) killGroup(term.pid); },
    pid: term.pid,
    exited,
  };
}

function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? String(n);
}
