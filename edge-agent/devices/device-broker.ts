import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Logger } from '../../shared/logger.js';
import type { DesiredCache } from '../cache/desired-cache.js';
import type { Outbox } from '../cache/outbox.js';
import { maySubscribe, publishKind } from './access.js';
import { DeviceDirectory } from './device-directory.js';
import { DeviceLogin, type LoginRefusal, type PeerCertificate } from './device-login.js';
import { createDeviceTlsServer, peerCertificate, type DeviceTlsOptions } from './device-tls.js';
import type { LoginLimit } from './login-limiter.js';
import { DEFAULT_MAX_PACKET_BYTES, limitPacketSize } from './mqtt-packet-limit.js';
import { sniffProtocolLevel } from './mqtt-sniff.js';
import { Mqtt5Session } from './mqtt5-session.js';
import { Reason } from './mqtt5-translate.js';
import type { DeviceMetrics } from './device-metrics.js';
import { GroupCommit, type GroupCommitOptions } from './group-commit.js';
import { DeviceMessages } from './device-messages.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface DeviceBrokerOptions {
  /** MQTT over TCP. */
  listen: HostPort;
  /** MQTT over WebSocket (path /mqtt or any), when set. */
  wsListen?: HostPort;
  /** MQTT over TLS (--mqtt-tls-listen), optionally with device client certificates (caFile). */
  tls?: DeviceTlsOptions & { listen: HostPort };
  /** Development only: a client without username is the device named by its client id. */
  allowAnonymous?: boolean;
  /** Failed logins allowed per client address and per username. Defaults: 30/min per address, 10/min per username. */
  loginLimit?: { perAddress?: LoginLimit; perUsername?: LoginLimit };
  groupCommit?: GroupCommitOptions;
  /** Largest remaining length of a packet a device may send (MQTT 3.1.1 and 5), bytes. Default 256 KiB. */
  maxPacketBytes?: number;
}

export const DEFAULT_LOGIN_LIMIT = { perAddress: { failures: 30, perMs: 60_000 }, perUsername: { failures: 10, perMs: 60_000 } } as const;

/** What the broker knows about a connection besides MQTT: keyed by the stream aedes handles (`client.conn`). */
interface Connection {
  address: string | undefined;
  certificate?: PeerCertificate | undefined;
  /** Set for MQTT 5 clients (served through the adapter). */
  v5?: Mqtt5Session;
}

/** A client sends its CONNECT within this time of connecting, or is dropped. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Where a refused MQTT 5 publish goes instead of its topic: no device may subscribe to it. */
const REFUSED_SINK = '$outpost/refused';

export interface DeviceBrokerDeps {
  cache: DesiredCache;
  outbox: Outbox;
  metrics: DeviceMetrics;
  log: Logger;
  node: string;
  unit: string;
}

const authError = (returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

/** CONNACK codes of a refused login: MQTT 3.1.1 return code, MQTT 5 reason code. */
const REFUSAL_CODES: Record<LoginRefusal, [2 | 3 | 4 | 5, number]> = {
  'bad-credentials': [4, Reason.badUserNameOrPassword],
  'bad-certificate': [4, Reason.badUserNameOrPassword],
  anonymous: [5, Reason.notAuthorized],
  'not-bound': [5, Reason.notAuthorized],
  'client-id': [2, Reason.clientIdNotValid],
  // 3.1.1 has no "try later": 3 is "server unavailable".
  'rate-limited': [3, Reason.connectionRateExceeded],
};

/**
 * The agent's embedded MQTT broker (aedes): the home of the devices bound to this node or unit.
 * Every accepted device message is written to the outbox before the broker goes on with it: the
 * aedes authorizePublish hook returns only after the group commit, and aedes sends a QoS 1
 * PUBACK only after that hook, so a PUBACK means the message is on disk. aedes speaks MQTT 3.1.1:
 * a connection whose CONNECT says MQTT 5 is served through an Mqtt5Session in front of it.
 */
export class DeviceBroker {
  private broker: Aedes | undefined;
  private tcp: Server | undefined;
  private http: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
  private tls: TlsServer | undefined;
  private readonly directory: DeviceDirectory;
  private readonly login: DeviceLogin;
  private readonly connectionOf = new WeakMap<object, Connection>();
  private readonly commit: GroupCommit;
  private readonly deviceOf = new WeakMap<Client, string>();
  private readonly online = new Set<Client>();
  private readonly connections = new Map<string, number>();
  private readonly messages: DeviceMessages;

  constructor(private readonly deps: DeviceBrokerDeps, private readonly options: DeviceBrokerOptions) {
    this.directory = new DeviceDirectory(deps.cache, { node: deps.node, unit: deps.unit });
    this.login = new DeviceLogin(this.directory, {
      allowAnonymous: options.allowAnonymous ?? false,
      perAddress: options.loginLimit?.perAddress ?? DEFAULT_LOGIN_LIMIT.perAddress,
      perUsername: options.loginLimit?.perUsername ?? DEFAULT_LOGIN_LIMIT.perUsername,
    });
    this.commit = new GroupCommit(deps.outbox, options.groupCommit);
    this.commit.onCommitted = (_rows, ms) => deps.metrics.commitSeconds.observe(ms / 1000);
    this.messages = new DeviceMessages({ directory: this.directory, commit: this.commit, metrics: deps.metrics, log: deps.log, publish: (topic, payload, retain) => this.publish(topic, payload, retain) });
  }

  async start(): Promise<void> {
    this.directory.refresh();
    // TLS files are read first: a certificate that cannot be used fails the start before anything listens.
    const tls = this.options.tls ? createDeviceTlsServer(this.options.tls, (socket) => this.accept(socket, { address: socket.remoteAddress, certificate: peerCertificate(socket) })) : undefined;
    const broker = await Aedes.createBroker({
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => {
        const device = this.deviceOf.get(client);
        if (device !== undefined && maySubscribe(device, sub.topic)) return done(null, sub);
        this.count('not-allowed');
        this.deps.log.warn({ device, clientId: client.id, topic: sub.topic }, 'device subscription refused');
        done(null, null);
      },
      authorizeForward: (client, packet) => {
        const device = this.deviceOf.get(client);
        return device !== undefined && maySubscribe(device, packet.topic) ? packet : null;
      },
    });
    this.broker = broker;
    broker.on('clientReady', (client) => this.presence(client, true));
    broker.on('clientDisconnect', (client) => this.presence(client, false));
    broker.on('clientError', (client, err) => this.deps.log.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
    broker.on('connectionError', (client, err) => this.deps.log.debug({ clientId: client.id, err: err.message }, 'mqtt connection refused'));
    broker.on('keepaliveTimeout', (client) => this.v5Of(client)?.closingBecause(Reason.keepAliveTimeout));
    this.tcp = createServer((socket) => this.accept(socket, { address: socket.remoteAddress }));
    await listen(this.tcp, this.options.listen);
    if (this.options.wsListen) {
      this.http = createHttpServer((_req, res) => res.writeHead(426).end('MQTT over WebSocket only\n'));
      this.wss = new WebSocketServer({ server: this.http, maxPayload: 1024 * 1024 });
      this.wss.on('connection', (ws, req) => this.accept(createWebSocketStream(ws), { address: req.socket.remoteAddress }, req));
      await listen(this.http, this.options.wsListen);
    }
    if (tls && this.options.tls) {
      this.tls = tls;
      await listen(tls, this.options.tls.listen);
    }
    this.messages.publishDesired();
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    this.commit.flush();
    this.wss?.close();
    for (const server of [this.tcp, this.http, this.tls]) {
      if (!server) continue;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Where the broker listens (port 0 resolved); empty before start. */
  addresses(): { tcp?: HostPort; ws?: HostPort; tls?: HostPort } {
    const a = this.tcp?.address() as AddressInfo | null | undefined;
    const w = this.http?.address() as AddressInfo | null | undefined;
    const t = this.tls?.address() as AddressInfo | null | undefined;
    return { ...(a ? { tcp: { host: a.address, port: a.port } } : {}), ...(w ? { ws: { host: w.address, port: w.port } } : {}), ...(t ? { tls: { host: t.address, port: t.port } } : {}) };
  }

  /**
   * A new connection (TCP, WebSocket or TLS): its CONNECT's protocol level decides whether it goes
   * to aedes as it is (3.1.1, 3.1: the bytes read are put back) or through the MQTT 5 adapter.
   */
  private accept(stream: Duplex, connection: Connection, req?: IncomingMessage): void {
    const maxBytes = this.options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    // Before the first read: aedes parses any packet whole, so a 3.1.1 client announcing 256 MB
    // would make it buffer that much. MQTT 5 connections are limited by their session instead (0x95).
    const onTooLarge = (announced: number) => {
      this.count('packet-too-large');
      this.deps.log.warn({ address: connection.address, announced, maxBytes }, 'mqtt connection closed: packet larger than the limit');
    };
    const unlimit = limitPacketSize(stream, { maxBytes, onTooLarge });
    sniffProtocolLevel(stream, CONNECT_TIMEOUT_MS).then(
      ({ level, head }) => {
        const broker = this.broker;
        if (!broker || broker.closed) return stream.destroy();
        if (level === 5) {
          unlimit();
          const session: Mqtt5Session = new Mqtt5Session(stream, head, {
            maxPacketBytes: maxBytes,
            onPacketTooLarge: onTooLarge,
            maySubscribe: (topic) => {
              const client = (session.inner as Duplex & { client?: Client }).client;
              const device = client && this.deviceOf.get(client);
              return device !== undefined && maySubscribe(device, topic);
            },
          });
          this.connectionOf.set(session.inner, { ...connection, v5: session });
          broker.handle(session.inner, req as never);
          return;
        }
        stream.unshift(head);
        this.connectionOf.set(stream, connection);
        broker.handle(stream, req as never);
      },
      (err: Error) => this.deps.log.debug({ address: connection.address, err: err.message }, 'mqtt connection dropped before CONNECT'),
    );
  }

  private connection(client: Client): Connection | undefined {
    return this.connectionOf.get(client.conn as object);
  }

  private v5Of(client: Client): Mqtt5Session | undefined {
    return this.connection(client)?.v5;
  }

  /** The cache changed (a sync was applied): re-read devices and publish changed desired twins. */
  refresh(): void {
    this.directory.refresh();
    this.messages.publishDesired();
    // A device deleted or moved to another node or unit loses its connections here.
    for (const client of [...this.online]) {
      const device = this.deviceOf.get(client);
      if (device === undefined || this.directory.device(device) === undefined) {
        this.v5Of(client)?.closingBecause(Reason.notAuthorized);
        client.close();
      }
    }
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const connection = this.connection(client);
    this.login.login({ clientId: client.id, username, password, address: connection?.address, certificate: connection?.certificate }).then(
      (res) => {
        if (res.ok) {
          this.deviceOf.set(client, res.device);
          return done(null, true);
        }
        this.count(res.reason);
        this.deps.log.warn({ username: username?.slice(0, 253), clientId: client.id.slice(0, 253), address: connection?.address, reason: res.reason }, 'device login refused');
        const [v4, v5] = REFUSAL_CODES[res.reason];
        connection?.v5?.refuseConnect(v5, res.message);
        done(authError(v4, res.message), false);
      },
      (err: unknown) => done(authError(5, (err as Error).message), false),
    );
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const device = client ? this.deviceOf.get(client) : undefined;
    const kind = device === undefined ? undefined : publishKind(device, packet.topic);
    if (device === undefined || kind === undefined) {
      const v5 = client ? this.v5Of(client) : undefined;
      if (v5 && device !== undefined) {
        // MQTT 5 refuses one publish (PUBACK 0x87) and keeps the connection. The publish still goes
        // through aedes (to nowhere) and its ack waits its turn behind the commits of the publishes
        // before it: aedes handles one read's packets concurrently, and acks must stay in order.
        if (packet.messageId !== undefined && packet.qos > 0) v5.refusePublish(packet.messageId, packet.topic);
        this.messages.refuse(device, packet.topic.slice(0, 256), 'not-allowed', `publishing on ${packet.topic.slice(0, 256)} is not allowed`);
        packet.topic = REFUSED_SINK;
        packet.payload = Buffer.alloc(0);
        packet.retain = false;
        return this.commit.after(() => done(null));
      }
      // MQTT 3.1.1 has no way to refuse one publish: aedes closes the connection.
      this.count('not-allowed');
      this.deps.log.warn({ device, clientId: client?.id, topic: packet.topic.slice(0, 256) }, 'device publish refused: not its topic');
      return done(new Error(`publishing on ${packet.topic} is not allowed`));
    }
    packet.retain = false;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    this.messages.handle(device, kind, packet.topic, payload, done);
  }

  private presence(client: Client, up: boolean): void {
    const device = this.deviceOf.get(client);
    if (device === undefined || up === this.online.has(client)) return;
    if (up && this.directory.device(device) === undefined) {
      this.v5Of(client)?.closingBecause(Reason.notAuthorized);
      client.close(); // deleted or moved between its login and now
      return;
    }
    if (up) this.online.add(client);
    else this.online.delete(client);
    const before = this.connections.get(device) ?? 0;
    const after = before + (up ? 1 : -1);
    if (after > 0) this.connections.set(device, after);
    else this.connections.delete(device);
    this.deps.metrics.connected.set(this.connections.size);
    if ((before === 0) === up) {
      this.deps.log.info({ device, clientId: client.id }, up ? 'device online' : 'device offline');
      this.messages.presence(device, up);
    }
  }

  private publish(topic: string, payload: Buffer, retain: boolean): void {
    const broker = this.broker;
    if (!broker || broker.closed) return;
    broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain, dup: false }, (err) => {
      if (err) this.deps.log.warn({ topic, err: err.message }, 'publish to device failed');
    });
  }

  private count(reason: string): void {
    this.deps.metrics.rejected.inc({ reason });
  }
}

function listen(server: Server | HttpServer, at: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
