import type { Command } from 'commander';
import type WebSocket from 'ws';
import { fromErrorBody, OutpostError, type ErrorBody } from '../../shared/errors.js';
import { ExecChannel, ExecOutputDecoder } from '../../shared/protocol/exec.js';
import { HubClient } from '../client.js';
import type { Connection } from '../config.js';
import { openTunnel, resolveTunnelTarget } from '../tunnel-socket.js';

export interface ExecFlags {
  stdin?: boolean;
  tty?: boolean;
  unit?: string;
  node?: string;
}

/** Exit code when our own output was closed under us (128 + SIGPIPE), as a shell reports it. */
const SIGPIPE_EXIT = 141;

/** Local stdin bytes in flight to the hub above which reading stdin pauses. */
const STDIN_HIGH_WATER = 1024 * 1024;

/** The terminal the CLI runs in (process.stdin/stdout by default; tests may pass others). */
export interface ExecTerminal {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

export function registerExec(program: Command, connection: () => Connection): void {
  program
    .command('exec <target> <command...>')
    .description('run a command in an instance of an app on its edge node, through the hub (APP or INSTANCE; put the command after --)')
    .option('-i, --stdin', 'pass this terminal\'s stdin to the command')
    .option('-t, --tty', 'run the command in a terminal (raw mode, window size follows this one)')
    .option('--unit <unit>', 'an instance of the app in this unit')
    .option('--node <node>', 'an instance of the app on this node')
    .action(async (target: string, command: string[], o: ExecFlags) => {
      const code = await execCommand(connection(), target, command, o, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
      process.exitCode = code;
    });
}

/** Runs the exec; resolves with the remote command's exit code. Failures of Outpost itself throw an OutpostError (exit 1). */
export async function execCommand(conn: Connection, name: string, command: string[], o: ExecFlags, term: ExecTerminal): Promise<number> {
  if (command.length === 0) throw new OutpostError('BAD_REQUEST', 'no command: outpost exec APP|INSTANCE [-it] -- COMMAND [ARGS...]');
  let tty = o.tty === true;
  if (tty && !term.stdin.isTTY) {
    term.stderr.write('warning: -t ignored: stdin is not a terminal\n');
    tty = false;
  }
  const withStdin = o.stdin === true;
  const target = await resolveTunnelTarget(new HubClient(conn), name, o);
  const params = new URLSearchParams();
  for (const arg of command) params.append('command', arg);
  params.set('tty', String(tty));
  params.set('stdin', String(withStdin));
  if (tty) {
    params.set('cols', String(term.stdout.columns || 80));
    params.set('rows', String(term.stdout.rows || 24));
  }
  const ws = await openTunnel(conn, 'exec', target, params);
  return relayExec(ws, term, { tty, withStdin });
}

/**
 * Output frames to stdout and stderr, stdin to the stream, window size changes as resize
 * controls; resolves when the hub closes the socket. Raw mode is set for -t and always restored.
 */
function relayExec(ws: WebSocket, term: ExecTerminal, o: { tty: boolean; withStdin: boolean }): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let exitCode: number | undefined;
    let failure: OutpostError | undefined;
    const cleanup: Array<() => void> = [];
    const decoder = new ExecOutputDecoder((channel, payload) => {
      const out = channel === ExecChannel.STDERR ? term.stderr : term.stdout;
      if (!out.write(payload)) {
        ws.pause();
        out.once('drain', () => ws.resume());
      }
    });

    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        try {
          decoder.push(data as Buffer);
        } catch (err) {
          failure = err as OutpostError;
          ws.terminate();
        }
        return;
      }
      let msg: { type?: unknown; code?: unknown; message?: unknown };
      try {
        msg = JSON.parse(data.toString()) as typeof msg;
      } catch {
        return;
      }
      if (msg.type === 'exit' && typeof msg.code === 'number') exitCode = msg.code;
      else if (msg.type === 'error') failure = fromErrorBody({ code: String(msg.code), message: typeof msg.message === 'string' ? msg.message : 'the stream failed' } as ErrorBody, 502);
      else if (msg.type === 'end' && exitCode !== undefined) ws.close(1000);
    });

    if (o.tty && o.withStdin) {
      term.stdin.setRawMode(true);
      cleanup.push(() => term.stdin.setRawMode(false));
    }
    if (o.tty) {
      const onResize = () => sendText(ws, { type: 'resize', cols: term.stdout.columns, rows: term.stdout.rows });
      term.stdout.on('resize', onResize);
      cleanup.push(() => term.stdout.off('resize', onResize));
    }
    if (o.withStdin) {
      const onData = (chunk: Buffer) => {
        if (ws.readyState !== ws.OPEN) return;
        ws.send(chunk, { binary: true }, () => {
          if (ws.bufferedAmount < STDIN_HIGH_WATER / 4 && term.stdin.isPaused()) term.stdin.resume();
        });
        if (ws.bufferedAmount > STDIN_HIGH_WATER) term.stdin.pause();
      };
      const onEnd = () => sendText(ws, { type: 'end' });
      term.stdin.on('data', onData);
      term.stdin.once('end', onEnd);
      term.stdin.resume();
      cleanup.push(() => {
        term.stdin.off('data', onData);
        term.stdin.off('end', onEnd);
        term.stdin.pause();
      });
    }

    // A reader that went away (`outpost exec ... | head -1`): stop, as a local command would on SIGPIPE.
    let brokenPipe = false;
    const onOutputError = () => {
      brokenPipe = true;
      ws.terminate();
    };
    term.stdout.on('error', onOutputError);
    term.stderr.on('error', onOutputError);
    cleanup.push(() => {
      term.stdout.off('error', onOutputError);
      term.stderr.off('error', onOutputError);
    });

    ws.once('close', () => {
      for (const fn of cleanup) fn();
      if (brokenPipe) return resolve(SIGPIPE_EXIT);
      if (decoder.buffered > 0 && !failure) failure = new OutpostError('PROTOCOL', 'the output ended in the middle of a frame');
      if (failure) return reject(failure);
      if (exitCode === undefined) return reject(new OutpostError('UNAVAILABLE', 'the connection to the hub closed before the command ended (hub or agent went away)'));
      // Everything written so far reaches the terminal before the process exits.
      term.stdout.write('', () => term.stderr.write('', () => resolve(exitCode as number)));
    });
    ws.on('error', (err) => {
      failure ??= new OutpostError('UNAVAILABLE', `connection to the hub failed: ${err.message}`);
    });
  });
}

function sendText(ws: WebSocket, msg: object): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}
