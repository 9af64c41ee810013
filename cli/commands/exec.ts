import type { Command } from 'commander';
import type { TunnelConnection } from '../tunnel-connection.js';
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
  const tunnel = await openTunnel(conn, 'exec', target, params);
  return relayExec(tunnel, term, { tty, withStdin });
}

/**
 * Output frames to stdout and stderr, stdin to the stream, window size changes as resize
 * controls; resolves when the hub closes the socket. Raw mode is set for -t and always restored.
 */
function relayExec(tunnel: TunnelConnection, term: ExecTerminal, o: { tty: boolean; withStdin: boolean }): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let exitCode: number | undefined;
    let failure: OutpostError | undefined;
    const cleanup: Array<() => void> = [];
    const decoder = new ExecOutputDecoder((channel, payload) => {
      const out = channel === ExecChannel.STDERR ? term.stderr : term.stdout;
      if (!out.write(payload)) {
        tunnel.pause();
        out.once('drain', () => tunnel.resume());
      }
    });

    tunnel.on('data', (data: Buffer) => {
      try {
        decoder.push(data);
      } catch (err) {
        failure = err as OutpostError;
        tunnel.terminate();
      }
    });
    tunnel.on('control', (msg: { type?: unknown; code?: unknown; message?: unknown } | undefined) => {
      if (!msg) return;
      if (msg.type === 'exit' && typeof msg.code === 'number') exitCode = msg.code;
      else if (msg.type === 'error') failure = fromErrorBody({ code: String(msg.code), message: typeof msg.message === 'string' ? msg.message : 'the stream failed' } as ErrorBody, 502);
      else if (msg.type === 'end' && exitCode !== undefined) tunnel.close(1000);
    });

    if (o.tty && o.withStdin) {
      term.stdin.setRawMode(true);
      cleanup.push(() => term.stdin.setRawMode(false));
    }
    if (o.tty) {
      const onResize = () => tunnel.sendControl({ type: 'resize', cols: term.stdout.columns, rows: term.stdout.rows });
      term.stdout.on('resize', onResize);
      cleanup.push(() => term.stdout.off('resize', onResize));
    }
    if (o.withStdin) {
      const onData = (chunk: Buffer) => {
        if (!tunnel.sendData(chunk)) term.stdin.pause();
      };
      const onDrain = () => term.stdin.resume();
      tunnel.on('drain', onDrain);
      const onEnd = () => tunnel.sendControl({ type: 'end' });
      term.stdin.on('data', onData);
      term.stdin.once('end', onEnd);
      term.stdin.resume();
      cleanup.push(() => {
        term.stdin.off('data', onData);
        tunnel.off('drain', onDrain);
        term.stdin.off('end', onEnd);
        term.stdin.pause();
      });
    }

    // A reader that went away (`outpost exec ... | head -1`): stop, as a local command would on SIGPIPE.
    let brokenPipe = false;
    const onOutputError = () => {
      brokenPipe = true;
      tunnel.terminate();
    };
    term.stdout.on('error', onOutputError);
    term.stderr.on('error', onOutputError);
    cleanup.push(() => {
      term.stdout.off('error', onOutputError);
      term.stderr.off('error', onOutputError);
    });

    tunnel.once('close', () => {
      for (const fn of cleanup) fn();
      if (brokenPipe) return resolve(SIGPIPE_EXIT);
      if (decoder.buffered > 0 && !failure) failure = new OutpostError('PROTOCOL', 'the output ended in the middle of a frame');
      if (failure) return reject(failure);
      if (exitCode === undefined) return reject(new OutpostError('UNAVAILABLE', 'the connection to the hub closed before the command ended (hub or agent went away)'));
      // Everything written so far reaches the terminal before the process exits.
      term.stdout.write('', () => term.stderr.write('', () => resolve(exitCode as number)));
    });
    tunnel.on('error', (err: Error) => {
      failure ??= new OutpostError('UNAVAILABLE', `connection to the hub failed: ${err.message}`);
    });
  });
}
