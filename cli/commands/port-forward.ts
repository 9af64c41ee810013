import { createServer, type Server, type Socket } from 'node:net';
import type { Command } from 'commander';
import type WebSocket from 'ws';
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
  const tunnels = new Set<WebSocket>();
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
      // Stopping: no close handshake to wait for (a hub that does not answer would hold the CLI for ws's 30 s close timeout).
      for (const ws of tunnels) ws.terminate();
      server.close(() => resolve());
    }),
  };
}

async function relayConnection(conn: Connection, target: TunnelTarget, port: number, socket: Socket, warn: (line: string) => void, tunnels: Set<WebSocket>): Promise<void> {
  socket.pause();
  let ws: Awaited<ReturnType<typeof openTunnel>>;
  try {
    ws = await openTunnel(conn, 'port-forward', target, new URLSearchParams({ port: String(port) }));
  } catch (err) {
    warn(`error: ${(err as Error).message}`);
    socket.destroy();
    return;
  }
  if (socket.destroyed) {
    ws.terminate();
    return;
  }
  tunnels.add(ws);
  ws.once('close', () => tunnels.delete(ws));
  let unsent = 0;
  socket.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    unsent += chunk.length;
    ws.send(chunk, { binary: true }, () => {
      unsent -= chunk.length;
      if (unsent < 256 * 1024 && socket.isPaused()) socket.resume();
    });
    if (unsent > 1024 * 1024) socket.pause();
  });
  socket.on('end', () => { if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'end' })); });
  socket.on('error', () => ws.terminate());
  // A ws paused for a full local socket would never read the hub's close frame: resume it first.
  socket.on('close', () => { ws.resume(); if (ws.readyState === ws.OPEN) ws.close(1000); });
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      if (!socket.write(data as Buffer)) {
        ws.pause();
        socket.once('drain', () => ws.resume());
      }
      return;
    }
    let msg: { type?: unknown; code?: unknown; message?: unknown } = {};
    try {
      msg = JSON.parse(data.toString()) as typeof msg;
    } catch {
      return;
    }
    if (msg.type === 'end') socket.end();
    else if (msg.type === 'error') warn(`error: ${fromErrorBody({ code: String(msg.code), message: String(msg.message ?? 'the stream failed') } as ErrorBody, 502).message}`);
  });
  // A clean close comes after the 'end' control: let buffered writes reach the local client.
  ws.once('close', (code) => (code === 1000 ? socket.end() : socket.destroy()));
  ws.on('error', (err) => warn(`error: connection to the hub failed: ${err.message}`));
  socket.resume();
}
