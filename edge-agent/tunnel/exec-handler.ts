import type { InstanceStatus } from '../../shared/api/instance.js';
import { isOutpostError, OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { encodeExecOutput, parseExecParams, parseResize, type ExecChannel, type ExecExit, type ExecParams } from '../../shared/protocol/exec.js';
import type { OpenRequest } from '../../shared/protocol/streams.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import { EngineError, type DockerEngine } from '../runtime/container/docker-engine.js';
import type { StreamHandler } from './agent-tunnel.js';
import { startContainerExec } from './exec-container.js';
import { startPipeExec } from './exec-pipe.js';
import { loadPty, startPtyExec, type PtyModule } from './exec-pty.js';
import type { ExecMetrics } from './exec-metrics.js';
import type { ExecGroupStore } from './exec-groups.js';
import type { ExecSession } from './exec-session.js';

/** What the exec handler needs of the agent's runtimes. */
export interface ExecTargets {
  /** Every instance of the node with its status (WorkloadRuntime.statuses). */
  statuses(): Map<string, InstanceStatus>;
  /** Env and cwd of a running process instance (ProcessRuntime.execContext). */
  processContext(name: string): { env: Record<string, string>; cwd: string } | undefined;
  /** Engine and container of a running container instance (ContainerRuntime.execTarget). */
  container?(name: string): { engine: DockerEngine; containerId: string } | undefined;
}

export interface ExecHandlerDeps {
  targets: ExecTargets;
  log: Logger;
  /** This node's name, for messages. */
  node: string;
  /** Loads the pty library (default: node-pty, once, on the first interactive exec). */
  loadPty?: () => Promise<PtyModule | { unavailable: string }>;
  metrics?: ExecMetrics;
  /** Where running host commands' process groups are recorded, so that a restarted agent ends them. */
  groups?: ExecGroupStore;
}

/**
 * The agent's handler for 'exec' streams: runs a command in the environment of an instance this
 * node runs (a process instance's env and cwd, or the container through the Engine API), with or
 * without a pseudo-terminal, and relays stdin, output frames (shared/protocol/exec.ts), resize
 * and the exit code. Anything else (no such instance, not running, bad params) is refused with
 * an OutpostError before the stream is accepted.
 */
export function createExecHandler(deps: ExecHandlerDeps): StreamHandler {
  let pty: Promise<PtyModule | { unavailable: string }> | undefined;
  const log = deps.log.child({ component: 'exec' });
  const handler = startExec(deps, log, () => (pty ??= (deps.loadPty ?? loadPty)()));
  return async (open, stream) => {
    try {
      await handler(open, stream);
    } catch (err) {
      deps.metrics?.refused.inc({ code: isOutpostError(err) ? err.code : 'OUTPOST_INTERNAL' });
      throw err;
    }
  };
}

function startExec(deps: ExecHandlerDeps, log: Logger, ptyModule: () => Promise<PtyModule | { unavailable: string }>): StreamHandler {
  return async (open, stream) => {
    const params = parseExecParams(open.params);
    const instance = instanceOf(open);
    const sinkOf = outputSink(stream);
    let session: ExecSession;
    const proc = deps.targets.processContext(instance);
    const ctr = proc ? undefined : deps.targets.container?.(instance);
    if (proc) {
      const req = { command: params.command, env: proc.env, cwd: proc.cwd };
      if (params.tty) {
        const mod = await ptyModule();
        if ('unavailable' in mod) throw new OutpostError('UNAVAILABLE', `interactive exec (-t) is not available on node ${deps.node}: ${mod.unavailable}`);
        session = startPtyExec(mod, req, params, sinkOf.sink);
      } else session = startPipeExec(req, params.stdin, sinkOf.sink);
    } else if (ctr) {
      try {
        session = await startContainerExec(ctr.engine, ctr.containerId, params, sinkOf.sink);
      } catch (err) {
        throw engineRefusal(err, instance);
      }
    } else throw notRunning(deps, instance);
    recordGroup(deps, session, instance);
    sinkOf.attach(session);
    const runtime = proc ? 'process' : 'container';
    deps.metrics?.started.inc({ runtime, tty: String(params.tty) });
    deps.metrics?.running.inc({ runtime });
    void session.exited.then(() => deps.metrics?.running.dec({ runtime }));
    log.info({ stream: open.streamId, instance, command: params.command[0], tty: params.tty, user: open.user }, 'exec started');
    relay(stream, session, params, log.child({ stream: open.streamId, instance }));
  };
}

/** Records a host command's process group before the exec is reported started; forgets it once the command ended. */
function recordGroup(deps: ExecHandlerDeps, session: ExecSession, instance: string): void {
  if (!deps.groups || session.pid === undefined) return;
  const groups = deps.groups;
  let row: ReturnType<ExecGroupStore['record']>;
  try {
    row = groups.record(session.pid, instance);
  } catch (err) {
    // Unrecorded, it could outlive a crash of this agent unnoticed: refuse it instead.
    session.kill();
    throw new OutpostError('INTERNAL', `exec in instance ${instance} refused: cannot record its process: ${(err as Error).message}`);
  }
  void session.exited.then(() => {
    try {
      groups.forget(row);
    } catch (err) {
      deps.log.warn({ err, pid: row.pid }, 'cannot delete the record of an ended exec; the next agent start checks it');
    }
  });
}

function instanceOf(open: OpenRequest): string {
  if (open.target.address !== undefined) throw new OutpostError('BAD_REQUEST', 'exec runs in an instance: give target.instance, not an address');
  if (open.target.instance === undefined) throw new OutpostError('BAD_REQUEST', 'exec needs target.instance');
  return open.target.instance;
}

function notRunning(deps: ExecHandlerDeps, instance: string): OutpostError {
  const status = deps.targets.statuses().get(instance);
  if (!status) return new OutpostError('NOT_FOUND', `instance ${instance} does not run on node ${deps.node}`);
  const why = status.message ? `: ${status.message}` : '';
  return new OutpostError('CONFLICT', `instance ${instance} is not running on node ${deps.node} (phase ${status.phase}${why})`);
}

function engineRefusal(err: unknown, instance: string): OutpostError {
  if (!(err instanceof EngineError)) return new OutpostError('INTERNAL', `exec in instance ${instance} failed: ${(err as Error).message}`);
  if (err.status === 404) return new OutpostError('NOT_FOUND', `the container of instance ${instance} is gone: ${err.message}`);
  if (err.status === 409) return new OutpostError('CONFLICT', `the container of instance ${instance} is not running: ${err.message}`);
  if (err.unreachable) return new OutpostError('UNAVAILABLE', `the container engine does not answer: ${err.message}`);
  return new OutpostError('INTERNAL', `the container engine refused the exec: ${err.message}`);
}

/**
 * Output goes into the stream as exec frames; when the stream's buffer is full the command's
 * output is paused until it drains (a slow client holds back the command, never the agent).
 * Output may come before the session object exists (a failed start): it is written all the same.
 */
function outputSink(stream: TunnelStream): { sink: (channel: ExecChannel, data: Buffer) => void; attach(session: ExecSession): void } {
  let session: ExecSession | undefined;
  let paused = false;
  stream.on('drain', () => {
    if (!paused) return;
    paused = false;
    session?.resumeOutput();
  });
  return {
    sink(channel, data) {
      if (stream.destroyed || stream.writableEnded) return;
      let ok = true;
      for (const frame of encodeExecOutput(channel, data)) ok = stream.write(frame) && ok;
      if (!ok && !paused) {
        paused = true;
        session?.pauseOutput();
      }
    },
    attach(s) {
      session = s;
      if (paused) s.pauseOutput();
    },
  };
}

function relay(stream: TunnelStream, session: ExecSession, params: ExecParams, log: Logger): void {
  let done = false;
  stream.on('data', (chunk: Buffer) => {
    if (!params.stdin) return;
    stream.pause();
    session.writeStdin(chunk, () => stream.resume());
  });
  // The client's end of input (END, ordered after its last stdin bytes).
  stream.on('end', () => session.endStdin());
  stream.on('control', (msg: Record<string, unknown>) => {
    try {
      if (msg.type === 'resize') {
        const { cols, rows } = parseResize(msg);
        session.resize(cols, rows);
      } else log.debug({ type: msg.type }, 'unknown exec control message ignored');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'bad exec control message ignored');
    }
  });
  stream.on('error', (err) => log.debug({ err: err.message }, 'exec stream failed'));
  stream.once('close', () => {
    if (!done) {
      log.info('exec client went away; command killed');
      session.kill();
    }
  });
  void session.exited.then((exit) => {
    done = true;
    log.info({ code: exit.code, signal: exit.signal }, 'exec ended');
    if (stream.destroyed) return;
    const msg: ExecExit = { type: 'exit', code: exit.code, ...(exit.signal ? { signal: exit.signal } : {}) };
    stream.sendControl(msg);
    stream.end();
  });
}
