import { createServer, connect, type Server, type Socket } from 'node:net';

/** A loopback TCP relay that a test can cut (every connection dropped, new ones refused) and restore. */
export interface TcpProxy {
  /** 127.0.0.1:PORT to connect to instead of the target. */
  port: number;
  cut(): void;
  restore(): void;
  /** Connections relayed so far (a cut connection counts). */
  connections(): number;
  close(): Promise<void>;
}

/** Relays 127.0.0.1:<port 0> to `target` byte for byte (TLS passes through untouched). */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let blocked = false;
  let count = 0;
  const server: Server = createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    count++;
    const upstream = connect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = addr && typeof addr !== 'string' ? addr.port : 0;
  return {
    port,
    cut: () => {
      blocked = true;
      for (const s of open) s.destroy();
      open.clear();
    },
    restore: () => {
      blocked = false;
    },
    connections: () => count,
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    }),
  };
}
