import { createServer, type Server, type Socket } from 'node:net';
import type { Command } from 'commander';
import type { TunnelConnection } from '../tunnel-connection.js';
import { fromErrorBody, OutpostError, type ErrorBody } from '../../shared/errors.js';
import { HubClient } from '../client.js';
import type { Connection } from '../config.js';
import { openTunnel, resolveTunnelTarget, type TunnelTarget } from '../tunnel-socket.js';

export interface PortForwardFlags {
  unit?: string;
  node?: string;
  /** Local address to listen on. Default 127.0.0.1. */
  address?: string;
}

/** A running forward: where it listens, and how to stop it. */
export interface PortForward {
  server: Server;
  localPort: number;
  close(): Promise<void>;
}

export function registerPortForward(program: Command, connection: () => Connection): void {
  program
    .command('port-forward <target> <ports>')
    .description('forward a local TCP port to a port of an app\'s instance on its edge node, through the hub (LOCAL:REMOTE; LOCAL 0 picks a free port)')
    .option('--unit <unit>', 'an instance of the app in this unit')
    .option('--node <node>', 'an instance of the app on this node')
    .option('--address <address>', 'local address to listen on', '127.0.0.1')
    .action(async (target: string, ports: string, o: PortForwardFlags) => {
      const pf = await portForward(connection(), target, ports, o, (line) => process.stderr.write(`${line}\n`));
      process.stdout.write(`Forwarding from ${o.address ?? '127.0.0.1'}:${pf.localPort} -> ${target}:${ports.split(':')[1] ?? ports}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await pf.close();
    });
}

export function parsePorts(text: string): { local: number; remote: number } {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(text) ?? /^(\d{1,5})$/.exec(text);
  const local = Number(m?.[1]);
  const remote = Number(m?.[2] ?? m?.[1]);
  if (!m || local > 65535 || remote < 1 || remote > 65535) throw new OutpostError('BAD_REQUEST', `ports must be LOCAL:REMOTE (e.g. 8080:80) or PORT, got "${text}"`);
  return { local, remote };
}

/** Listens locally; each accepted connection opens one tunnel stream to REMOTE on the target. */
export async function portForward(conn: Connection, name: string, ports: string, o: PortForwardFlags, warn: (line: string) => void): Promise<PortForward> {
  const { local, remote } = parsePorts(ports);
  const target = await resolveTunnelTarget(new HubClient(conn), name, o);
  const sockets = new Set<Socket>();
  const tunnels = new Set<TunnelConnection>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    void relayConnection(conn, target, remote, socket, warn, tunnels);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new OutpostError('BAD_REQUEST', `cannot listen on ${o.address ?? '127.0.0.1'}:${local}: ${err.code ?? err.message}`)));
    server.listen(local, o.address ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    server,
    localPort: typeof address === 'object' && address ? address.port : local,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      // Stopping: no close handshake to wait for (a hub that does not answer would hold the CLI for the close timeout).
      for (const t of tunnels) t.terminate();
      server.close(() => resolve());
    }),
  };
}

async function relayConnection(conn: Connection, target: TunnelTarget, port: number, socket: Socket, warn: (line: string) => void, tunnels: Set<TunnelConnection>): Promise<void> {
  socket.pause();
  let tunnel: Awaited<ReturnType<typeof openTunnel>>;
  try {
    tunnel = await openTunnel(conn, 'port-forward', target, new URLSearchParams({ port: String(port) }), { reuseReads: true });
  } catch (err) {
    warn(`error: ${(err as Error).message}`);
    socket.destroy();
    return;
  }
  if (socket.destroyed) {
    tunnel.terminate();
    return;
  }
  tunnels.add(tunnel);
  tunnel.once('close', () => tunnels.delete(tunnel));
  socket.on('data', (chunk: Buffer) => {
    if (!tunnel.sendData(chunk)) socket.pause();
  });
  tunnel.on('drain', () => socket.resume());
  socket.on('end', () => tunnel.sendControl({ type: 'end' }));
  socket.on('error', () => tunnel.terminate());
  socket.on('close', () => tunnel.close(1000));
  tunnel.on('data', (data: Buffer) => {
    // The read buffer under `data` is reused once this write released it.
    if (!socket.write(data, tunnel.retain(data))) {
      tunnel.pause();
      socket.once('drain', () => tunnel.resume());
    }
  });
  tunnel.on('control', (msg: { type?: unknown; code?: unknown; message?: unknown } | undefined) => {
    if (msg?.type === 'end') socket.end();
    else if (msg?.type === 'error') warn(`error: ${fromErrorBody({ code: String(msg.code), message: String(msg.message ?? 'the stream failed') } as ErrorBody, 502).message}`);
  });
  // A clean close comes after the 'end' control: let buffered writes reach the local client.
  tunnel.once('close', (code: number) => (code === 1000 ? socket.end() : socket.destroy()));
  tunnel.on('error', (err: Error) => warn(`error: connection to the hub failed: ${err.message}`));
  socket.resume();
}
