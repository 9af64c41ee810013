import type { Command } from 'commander';
import type { TunnelConnection } from '../tunnel-connection.js';
import type { Instance } from '../../shared/api/index.js';
import { parseDuration } from '../../shared/duration.js';
import { fromErrorBody, OutpostError, type ErrorBody } from '../../shared/errors.js';
import { API_PREFIX, HubClient } from '../client.js';
import type { Connection } from '../config.js';
import { openTunnel } from '../tunnel-socket.js';

export interface LogsFlags {
  unit?: string;
  node?: string;
  instance?: string;
  follow?: boolean;
  tail?: string;
  since?: string;
  previous?: boolean;
}

export interface LogsOutput {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export function registerLogs(program: Command, connection: () => Connection): void {
  program
    .command('logs <app>')
    .description('print the logs of an app\'s instances (stdout and stderr) from their edge nodes, through the hub; several instances are interleaved, each line prefixed with [instance]')
    .option('--unit <unit>', 'only instances in this unit')
    .option('--node <node>', 'only instances on this node')
    .option('--instance <instance>', 'only this instance')
    .option('-f, --follow', 'keep printing new output (across restarts of the instance)')
    .option('--tail <lines>', 'only the last N lines of each instance')
    .option('--since <duration>', 'only log files written within this duration, e.g. 10m (the granularity is a log file)')
    .option('--previous', 'the output of the previous run of the instance (before its last restart)')
    .action(async (app: string, o: LogsFlags) => {
      process.exitCode = await logsCommand(connection(), app, o, { stdout: process.stdout, stderr: process.stderr });
    });
}

/** Prints the logs; resolves with the exit code (1 when a stream failed). Refusals before any output throw. */
export async function logsCommand(conn: Connection, app: string, o: LogsFlags, out: LogsOutput): Promise<number> {
  const params = new URLSearchParams();
  if (o.follow) params.set('follow', 'true');
  if (o.previous) params.set('previous', 'true');
  if (o.tail !== undefined) {
    if (!/^\d{1,9}$/.test(o.tail)) throw new OutpostError('BAD_REQUEST', `--tail must be a number of lines, got "${o.tail}"`);
    params.set('tail', o.tail);
  }
  if (o.since !== undefined) params.set('sinceSeconds', String(Math.ceil(parseDuration(o.since, '--since') / 1000)));
  const instances = await instancesOf(new HubClient(conn), app, o);
  const prefix = instances.length > 1;
  const results = await Promise.all(instances.map(async (instance) => {
    const label = prefix ? `[${instance}] ` : '';
    let tunnel: Awaited<ReturnType<typeof openTunnel>>;
    try {
      tunnel = await openTunnel(conn, 'logs', { instance }, params);
    } catch (err) {
      if (!prefix) throw err;
      out.stderr.write(`error: ${label}${(err as Error).message}\n`);
      return false;
    }
    // Listeners go on in the same turn as the open (frames may follow it at once).
    const printed = printStream(tunnel, label, out);
    // Logs read nothing from the CLI: our half of the stream is done (it closes when the agent's ends).
    tunnel.sendControl({ type: 'end' });
    return printed;
  }));
  return results.every(Boolean) ? 0 : 1;
}

/** The instances to read: --instance, or the app's (by unit and node), or APP itself when it names an instance. */
async function instancesOf(client: HubClient, app: string, o: LogsFlags): Promise<string[]> {
  const list = (await client.request<{ items: Instance[] }>('GET', `${API_PREFIX}/instances`)).items;
  if (o.instance) {
    const i = list.find((x) => x.metadata.name === o.instance);
    if (!i) throw new OutpostError('NOT_FOUND', `instance ${o.instance} not found`);
    if (i.spec.app !== app) throw new OutpostError('NOT_FOUND', `instance ${o.instance} is not an instance of app ${app}`);
    return [o.instance];
  }
  const ofApp = list.filter((i) => i.spec.app === app && (!o.unit || i.spec.unit === o.unit) && (!o.node || i.spec.node === o.node));
  if (ofApp.length > 0) return ofApp.map((i) => i.metadata.name).sort();
  if (!o.unit && !o.node && list.some((i) => i.metadata.name === app)) return [app];
  const where = [o.unit ? `unit ${o.unit}` : '', o.node ? `node ${o.node}` : ''].filter(Boolean).join(', ');
  throw new OutpostError('NOT_FOUND', `app ${app} has no instances${where ? ` on ${where}` : ''}`);
}

/** Copies one stream to stdout, whole lines with the prefix; resolves false when it failed. */
function printStream(tunnel: TunnelConnection, prefix: string, out: LogsOutput): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let partial: Buffer = Buffer.alloc(0);
    let failure: string | undefined;
    const write = (buf: Buffer) => {
      if (buf.length === 0) return;
      if (!out.stdout.write(buf)) {
        tunnel.pause();
        out.stdout.once('drain', () => tunnel.resume());
      }
    };
    tunnel.on('control', (msg: { type?: unknown; code?: unknown; message?: unknown } | undefined) => {
      if (msg?.type === 'error') failure = fromErrorBody({ code: String(msg.code), message: String(msg.message ?? 'the stream failed') } as ErrorBody, 502).message;
    });
    tunnel.on('data', (buf: Buffer) => {
      if (!prefix) return write(buf);
      const all = partial.length ? Buffer.concat([partial, buf]) : buf;
      const last = all.lastIndexOf(0x0a);
      if (last === -1) {
        partial = all;
        return;
      }
      const lines = all.subarray(0, last + 1).toString('utf8').split('\n');
      lines.pop();
      partial = Buffer.from(all.subarray(last + 1));
      write(Buffer.from(lines.map((l) => `${prefix}${l}\n`).join('')));
    });
    tunnel.once('close', (code: number) => {
      if (partial.length) write(Buffer.concat([Buffer.from(prefix), partial, Buffer.from('\n')]));
      if (!failure && code !== 1000) failure = 'the connection to the hub closed before the logs ended (hub or agent went away)';
      if (failure) out.stderr.write(`error: ${prefix}${failure}\n`);
      resolve(!failure);
    });
    tunnel.on('error', (err: Error) => { failure ??= `connection to the hub failed: ${err.message}`; });
  });
}
