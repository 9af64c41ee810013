import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import dnsPacket, { type Packet } from 'dns-packet';
import type { Logger } from '../../shared/logger.js';
import { answerQuery, encodeForUdp, RCODE, udpLimit } from './dns-answer.js';
import type { ServiceLookup } from './service-lookup.js';

export interface DnsServerOptions {
  host: string;
  /** 0 = any free port (the same one for UDP and TCP). */
  port: number;
  /** Zone served. Default `outpost`. */
  domain?: string;
  /** TTL of answers, seconds. Default 5. */
  ttlSeconds?: number;
  /** Open TCP connections at most. Default 256. */
  maxTcpConnections?: number;
  /** A TCP connection idle this long is closed, ms. Default 10 000. */
  tcpIdleMs?: number;
}

export interface DnsServerDeps {
  lookup: ServiceLookup;
  log: Logger;
  onQuery?(transport: 'udp' | 'tcp', rcode: number): void;
}

const MAX_TCP_MESSAGE = 65_535;

/**
 * The registry's DNS server, UDP and TCP on one port. A query the codec cannot read gets FORMERR
 * when its header is readable and is dropped otherwise; a failure while answering gets SERVFAIL.
 * Nothing a client sends stops the server.
 */
export class DnsServer {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly connections = new Set<Socket>();
  private boundPort = 0;

  constructor(private readonly deps: DnsServerDeps, private readonly options: DnsServerOptions) {}

  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `${isIPv6(this.options.host) ? `[${this.options.host}]` : this.options.host}:${this.boundPort}`;
  }

  async start(): Promise<void> {
    // With port 0 the UDP socket picks a port and TCP takes the same one; if TCP finds it taken, try again.
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(this.options.port);
      const port = udp.address().port;
      try {
        this.tcp = await this.bindTcp(port);
        this.udp = udp;
        this.boundPort = port;
        return;
      } catch (err) {
        udp.close();
        if (this.options.port !== 0 || attempt >= 5) throw err;
      }
    }
  }

  async stop(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await Promise.all([
      new Promise<void>((resolve) => (this.udp ? this.udp.close(() => resolve()) : resolve())),
      new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve())),
    ]);
    this.udp = undefined;
    this.tcp = undefined;
  }

  private bindUdp(port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket(isIPv6(this.options.host) ? 'udp6' : 'udp4');
      socket.once('error', reject);
      socket.bind(port, this.options.host, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.deps.log.warn({ err }, 'DNS UDP socket error'));
        socket.on('message', (msg, rinfo) => {
          void this.answer(msg, 'udp').then((reply) => {
            if (!reply || this.udp !== socket) return;
            // send() throws for a closed socket or a source port 0 (a forged packet); either ends only this reply.
            try {
              socket.send(reply, rinfo.port, rinfo.address);
            } catch (err) {
              this.deps.log.debug({ err }, 'DNS UDP reply not sent');
            }
          });
        });
        resolve(socket);
      });
    });
  }

  private bindTcp(port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.serveTcp(socket));
      server.maxConnections = this.options.maxTcpConnections ?? 256;
      server.once('error', reject);
      server.listen(port, this.options.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.deps.log.warn({ err }, 'DNS TCP server error'));
        resolve(server);
      });
    });
  }

  /** RFC 1035 4.2.2: each message is preceded by its two-byte length; several may share a connection. */
  private serveTcp(socket: Socket): void {
    this.connections.add(socket);
    socket.setTimeout(this.options.tcpIdleMs ?? 10_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.connections.delete(socket));
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length > MAX_TCP_MESSAGE + 2) return socket.destroy();
      while (pending.length >= 2) {
        const size = pending.readUInt16BE(0);
        if (pending.length < size + 2) break;
        const msg = pending.subarray(2, size + 2);
        pending = pending.subarray(size + 2);
        void this.answer(msg, 'tcp').then((reply) => {
          if (!reply || socket.destroyed || !socket.writable) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([len, reply]));
        });
      }
    });
  }

  /** Never rejects: the reply, or undefined when nothing should be sent. */
  private async answer(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let query: Packet & { opcode?: string };
    try {
      query = dnsPacket.decode(msg) as Packet & { opcode?: string };
    } catch {
      if (msg.length < 12) return undefined;
      this.deps.onQuery?.(transport, RCODE.FORMERR);
      return bareReply(msg, RCODE.FORMERR);
    }
    if (query.type === 'response') return undefined;
    try {
      const { response, rcode } = await answerQuery(query, this.deps.lookup, { domain: this.options.domain ?? 'outpost', ttlSeconds: this.options.ttlSeconds ?? 5 });
      this.deps.onQuery?.(transport, rcode);
      if (transport === 'tcp') {
        const buf = dnsPacket.encode(response);
        return buf.length <= MAX_TCP_MESSAGE ? buf : encodeForUdp(response, MAX_TCP_MESSAGE);
      }
      return encodeForUdp(response, udpLimit(query));
    } catch (err) {
      this.deps.log.warn({ err }, 'DNS query failed; answering SERVFAIL');
      this.deps.onQuery?.(transport, RCODE.SERVFAIL);
      return bareReply(msg, RCODE.SERVFAIL);
    }
  }
}

/** A header-only reply carrying the query's id and the rcode (for queries that cannot be parsed or answered). */
function bareReply(msg: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(msg.readUInt16BE(0), 0);
  out.writeUInt16BE(0x8000 | (msg.readUInt16BE(2) & 0x0100) | rcode, 2);
  return out;
}
