import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Logger } from '../../shared/logger.js';
import type { DesiredCache } from '../cache/desired-cache.js';
import type { Outbox } from '../cache/outbox.js';
import { clientIdAllowed, maySubscribe, publishKind } from './access.js';
import { DeviceDirectory } from './device-directory.js';
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
  /** Development only: a client without username is the device named by its client id. */
  allowAnonymous?: boolean;
  groupCommit?: GroupCommitOptions;
}

export interface DeviceBrokerDeps {
  cache: DesiredCache;
  outbox: Outbox;
  metrics: DeviceMetrics;
  log: Logger;
  node: string;
  unit: string;
}

const authError = (returnCode: 2 | 4 | 5, message: string): AuthenticateError => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

/**
 * The agent's embedded MQTT broker (aedes): the home of the devices bound to this node or unit.
 * Every accepted device message is written to the outbox before the broker goes on with it: the
 * aedes authorizePublish hook returns only after the group commit, and aedes sends a QoS 1
 * PUBACK only after that hook, so a PUBACK means the message is on disk.
 */
export class DeviceBroker {
  private broker: Aedes | undefined;
  private tcp: Server | undefined;
  private http: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
  private readonly directory: DeviceDirectory;
  private readonly commit: GroupCommit;
  private readonly deviceOf = new WeakMap<Client, string>();
  private readonly online = new Set<Client>();
  private readonly connections = new Map<string, number>();
  private readonly messages: DeviceMessages;

  constructor(private readonly deps: DeviceBrokerDeps, private readonly options: DeviceBrokerOptions) {
    this.directory = new DeviceDirectory(deps.cache, { node: deps.node, unit: deps.unit });
    this.commit = new GroupCommit(deps.outbox, options.groupCommit);
    this.commit.onCommitted = (_rows, ms) => deps.metrics.commitSeconds.observe(ms / 1000);
    this.messages = new DeviceMessages({ directory: this.directory, commit: this.commit, metrics: deps.metrics, log: deps.log, publish: (topic, payload, retain) => this.publish(topic, payload, retain) });
  }

  async start(): Promise<void> {
    this.directory.refresh();
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
    this.tcp = createServer((socket) => broker.handle(socket));
    await listen(this.tcp, this.options.listen);
    if (this.options.wsListen) {
      this.http = createHttpServer((_req, res) => res.writeHead(426).end('MQTT over WebSocket only\n'));
      this.wss = new WebSocketServer({ server: this.http, maxPayload: 1024 * 1024 });
      this.wss.on('connection', (ws, req) => broker.handle(createWebSocketStream(ws), req));
      await listen(this.http, this.options.wsListen);
    }
    this.messages.publishDesired();
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    this.commit.flush();
    this.wss?.close();
    for (const server of [this.tcp, this.http]) {
      if (!server) continue;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Where the broker listens (port 0 resolved); empty before start. */
  addresses(): { tcp?: HostPort; ws?: HostPort } {
    const a = this.tcp?.address() as AddressInfo | null | undefined;
    const w = this.http?.address() as AddressInfo | null | undefined;
    return { ...(a ? { tcp: { host: a.address, port: a.port } } : {}), ...(w ? { ws: { host: w.address, port: w.port } } : {}) };
  }

  /** The cache changed (a sync was applied): re-read devices and publish changed desired twins. */
  refresh(): void {
    this.directory.refresh();
    this.messages.publishDesired();
    // A device deleted or moved to another node or unit loses its connections here.
    for (const client of [...this.online]) {
      const device = this.deviceOf.get(client);
      if (device === undefined || this.directory.device(device) === undefined) client.close();
    }
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    const accept = (device: string) => {
      if (!clientIdAllowed(device, client.id)) {
        this.count('client-id');
        return done(authError(2, `client id must be "${device}" or start with "${device}-"`), false);
      }
      this.deviceOf.set(client, device);
      done(null, true);
    };
    if (username === undefined || username === '') {
      if (this.options.allowAnonymous && this.directory.device(client.id) !== undefined) return accept(client.id);
      this.count('anonymous');
      return done(authError(5, 'anonymous MQTT clients are not allowed'), false);
    }
    this.directory.authenticate(username, password?.toString('utf8') ?? '').then(
      (res) => {
        if (res.ok) return accept(res.device);
        this.count(res.reason);
        this.deps.log.warn({ username: username.slice(0, 253), clientId: client.id, reason: res.reason }, 'device login refused');
        done(authError(res.reason === 'bad-credentials' ? 4 : 5, res.reason), false);
      },
      (err: unknown) => done(authError(5, (err as Error).message), false),
    );
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const device = client ? this.deviceOf.get(client) : undefined;
    const kind = device === undefined ? undefined : publishKind(device, packet.topic);
    if (device === undefined || kind === undefined) {
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
