import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * pass: bytes flow both ways. cut: current connections are reset and new ones are reset on
 * accept (a link that is down). blackhole: connections are accepted and kept open but nothing is
 * forwarded either way (a half-open link: neither end learns that the other is gone until its own
 * read deadline fires).
 */
export type ProxyMode = 'pass' | 'cut' | 'blackhole';

export interface FaultProxyOptions {
  /** Where connections are forwarded (the hub). */
  targetPort: number;
  /** Default 127.0.0.1. */
  targetHost?: string;
  /** Address the proxy listens on; loopback only by default. Default 127.0.0.1. */
  host?: string;
  /** After a clean close of one side, how long the other may take to flush before it is destroyed, ms. Default 2000. */
  lingerMs?: number;
}

export interface FaultProxyStats {
  /** Connections accepted (in pass or blackhole mode). */
  accepted: number;
  /** Connections reset on accept because the link was cut. */
  refused: number;
  /** Connections reset by a cut. */
  reset: number;
  /** Upstream connections that failed (the hub was down): the client side was closed. */
  upstreamFailures: number;
  bytesUp: number;
  bytesDown: number;
}

/** One client connection and its upstream twin. */
interface Link {
  client: Socket;
  /** Not dialled yet while the link was accepted during a blackhole. */
  upstream: Socket | undefined;
  connected: boolean;
  done: boolean;
}

/**
 * A TCP proxy on loopback in front of the hub, one per agent, so that each agent's link can be
 * faulted on its own. Memory is bounded: a side is read only while the other side's write buffer
 * is below its high-water mark (backpressure), and a blackholed link is paused rather than
 * buffered. Socket errors never escape: they close the link they belong to.
 */
export class FaultProxy {
  private server: Server | undefined;
  private current: ProxyMode = 'pass';
  private readonly links = new Set<Link>();
  readonly stats: FaultProxyStats = { accepted: 0, refused: 0, reset: 0, upstreamFailures: 0, bytesUp: 0, bytesDown: 0 };

  constructor(private readonly options: FaultProxyOptions) {}

  get mode(): ProxyMode {
    return this.current;
  }

  /** The port it listens on (after `start()`). */
  get port(): number {
    const addr = this.server?.address();
    if (!addr || typeof addr === 'string') throw new Error('fault proxy is not listening');
    return addr.port;
  }

  /** `http://host:port` of the proxy, to give agents as their hub URL. */
  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** Open client connections (in any mode). */
  get activeConnections(): number {
    return this.links.size;
  }

  /** Listens on an OS-chosen port. */
  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => undefined); // a failing accept must not crash the harness
    this.server = server;
  }

  /** Closes the listener and every link. */
  async stop(): Promise<void> {
    for (const link of [...this.links]) this.destroy(link, true);
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  cut(): void {
    this.setMode('cut');
  }

  blackhole(): void {
    this.setMode('blackhole');
  }

  restore(): void {
    this.setMode('pass');
  }

  setMode(mode: ProxyMode): void {
    this.current = mode;
    for (const link of [...this.links]) {
      if (mode === 'cut') {
        this.stats.reset++;
        this.destroy(link, true);
      } else if (mode === 'blackhole') {
        link.client.pause();
        link.upstream?.pause();
      } else if (!link.upstream) {
        this.dial(link); // accepted during a blackhole: the SYN "arrives" now
      } else if (link.connected) {
        this.resume(link);
      }
    }
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.current === 'cut') {
      this.stats.refused++;
      reset(client);
      return;
    }
    this.stats.accepted++;
    const link: Link = { client, upstream: undefined, connected: false, done: false };
    this.links.add(link);
    client.on('error', () => this.destroy(link, true));
    client.on('close', (hadError) => this.sideClosed(link, client, hadError));
    // In a blackhole the client stays connected and paused (pauseOnConnect): nothing is dialled.
    if (this.current === 'pass') this.dial(link);
  }

  private dial(link: Link): void {
    const upstream = connect({ host: this.options.targetHost ?? '127.0.0.1', port: this.options.targetPort, allowHalfOpen: true });
    link.upstream = upstream;
    upstream.pause();
    upstream.on('error', () => {
      if (!link.connected) this.stats.upstreamFailures++;
      this.destroy(link, true);
    });
    upstream.on('close', (hadError) => this.sideClosed(link, upstream, hadError));
    upstream.once('connect', () => {
      if (link.done) return;
      link.connected = true;
      this.forward(link, link.client, upstream, 'bytesUp');
      this.forward(link, upstream, link.client, 'bytesDown');
      if (this.current === 'pass') this.resume(link);
    });
  }

  private forward(link: Link, from: Socket, to: Socket, counter: 'bytesUp' | 'bytesDown'): void {
    from.on('data', (chunk: Buffer) => {
      if (this.current !== 'pass' || link.done) {
        // Switched mode between the read and this callback: keep the bytes for later.
        from.pause();
        if (!from.readableEnded) from.unshift(chunk);
        return;
      }
      this.stats[counter] += chunk.length;
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (this.current === 'pass' && !link.done) from.resume();
    });
    from.on('end', () => {
      if (!to.destroyed) to.end();
    });
  }

  /** Resumes reading on each side whose opposite side can take more. */
  private resume(link: Link): void {
    const { client, upstream } = link;
    if (!upstream) return;
    if (!upstream.writableNeedDrain) client.resume();
    if (!client.writableNeedDrain) upstream.resume();
  }

  /** One side closed: on error close the link now; otherwise let the other side flush, bounded. */
  private sideClosed(link: Link, side: Socket, hadError: boolean): void {
    const other = side === link.client ? link.upstream : link.client;
    if (hadError || !other || other.destroyed) {
      this.destroy(link, false);
      return;
    }
    if (!other.writableEnded) other.end();
    const timer = setTimeout(() => this.destroy(link, false), this.options.lingerMs ?? 2000);
    timer.unref();
    other.once('close', () => {
      clearTimeout(timer);
      this.destroy(link, false);
    });
  }

  private destroy(link: Link, hard: boolean): void {
    if (link.done) return;
    link.done = true;
    this.links.delete(link);
    for (const s of [link.client, link.upstream]) {
      if (!s || s.destroyed) continue;
      if (hard) reset(s);
      else s.destroy();
    }
  }
}

/** Closes with an RST, so that the peer learns at once (as a refused or broken link). */
function reset(socket: Socket): void {
  // A socket still connecting has no peer to reset yet, and resetAndDestroy() would defer the
  // reset until a connect that may never complete, leaving the handle open.
  if (socket.connecting) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
