import type { Socket } from 'node:net';
import { ExecChannel, type ExecParams } from '../../shared/protocol/exec.js';
import type { DockerEngine } from '../runtime/container/docker-engine.js';
import { killExecGroup } from '../runtime/container/exec-reaper.js';
import { StreamDemux } from '../runtime/container/stream-demux.js';
import type { ExecOutcome, ExecOutputSink, ExecSession } from './exec-session.js';

/** After the output ends, how often and how long the engine is asked for the exit code. */
const EXIT_POLL_MS = 100;
const EXIT_POLL_TRIES = 50;
/** Exit code when the engine cannot tell one (as ssh reports its own failures). */
const UNKNOWN_EXIT = 255;

/**
 * Runs a command in a running container through the Engine API's exec: create, start attached on
 * a hijacked connection (stdin one way, output the other), resize for a tty, and the exit code
 * from the exec's inspect once its output ended. Rejects with EngineError when the exec cannot be
 * created or started (404: the container is gone, 409: it is not running).
 */
export async function startContainerExec(engine: DockerEngine, containerId: string, params: ExecParams, sink: ExecOutputSink): Promise<ExecSession> {
  const execId = await engine.createExec(containerId, { Cmd: params.command, Tty: params.tty, AttachStdin: params.stdin });
  const { socket, head } = await engine.startExecAttached(execId, params.tty);
  // The command's host pid (the engine starts it as the leader of its own session): recorded like
  // a host command's group, so that an agent started after a SIGKILLed one ends it (the engine
  // never ends an exec whose client went away).
  const info = await engine.inspectExec(execId).catch(() => undefined);
  const pid = info?.Pid !== undefined && info.Pid > 1 && info.Running !== false ? info.Pid : undefined;
  const demux = params.tty ? undefined : new StreamDemux((stream, payload) => sink(stream === 'stderr' ? ExecChannel.STDERR : ExecChannel.STDOUT, payload));
  const onOutput = (chunk: Buffer) => (demux ? demux.push(chunk) : sink(ExecChannel.STDOUT, chunk));
  if (head.length > 0) onOutput(head);
  socket.on('data', onOutput);
  // A socket error ends the output like a close does; the exit code still comes from the engine.
  socket.on('error', () => undefined);
  let ended = false;
  const exited = new Promise<ExecOutcome>((resolve) => {
    socket.once('close', () => {
      ended = true;
      resolve(exitCode(engine, execId));
    });
  });
  const resize = (cols: number, rows: number) => {
    if (!params.tty || ended) return;
    engine.resizeExec(execId, cols, rows).catch(() => undefined);
  };
  // The first size is set before any stdin is relayed, so a command reading the size at once sees it.
  if (params.tty) await engine.resizeExec(execId, params.cols, params.rows).catch(() => undefined);
  return {
    ...(pid !== undefined ? { pid } : {}),
    writeStdin(data, done) {
      if (!params.stdin || ended || socket.writableEnded) return done();
      if (socket.write(data)) done();
      else waitDrain(socket, done);
    },
    // Half close: the engine gives the command end of file on stdin and keeps sending output.
    endStdin: () => { if (params.stdin && !socket.writableEnded && !params.tty) socket.end(); },
    resize,
    pauseOutput: () => socket.pause(),
    resumeOutput: () => socket.resume(),
    kill: () => {
      if (ended) return;
      // The engine does not stop an exec whose client went away: its process group is killed.
      engine.inspectExec(execId).then(
        (info) => { if (info.Running !== false && info.Pid) killExecGroup(info.Pid, containerId); },
        () => undefined,
      ).finally(() => socket.destroy());
    },
    exited,
  };
}

function waitDrain(socket: Socket, done: () => void): void {
  const go = () => { socket.off('drain', go); socket.off('close', go); done(); };
  socket.on('drain', go);
  socket.on('close', go);
}

/** The engine may still report the exec running for a moment after its output ended. */
async function exitCode(engine: DockerEngine, execId: string): Promise<ExecOutcome> {
  for (let i = 0; i < EXIT_POLL_TRIES; i++) {
    try {
      const info = await engine.inspectExec(execId);
      if (info.Running !== true && typeof info.ExitCode === 'number') return { code: info.ExitCode };
    } catch {
      return { code: UNKNOWN_EXIT };
    }
    await new Promise((r) => setTimeout(r, EXIT_POLL_MS));
  }
  return { code: UNKNOWN_EXIT };
}
