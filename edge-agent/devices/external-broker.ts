import mqtt, { type MqttClient } from 'mqtt';
import { deviceOfTopic, topics } from '../../shared/devices/topics.js';
import { publishKind } from './access.js';
import type { DeviceBrokerDeps } from './device-broker.js';
import { DeviceDirectory } from './device-directory.js';
import { DeviceMessages } from './device-messages.js';
import { GroupCommit, type GroupCommitOptions } from './group-commit.js';

export interface ExternalBrokerOptions {
  /** mqtt://[user:password@]host:port (or ws://, mqtts://). */
  url: string;
  groupCommit?: GroupCommitOptions;
}

/**
 * `--mqtt-url`: the agent is a client of an existing broker (mosquitto) instead of running one.
 * It subscribes with a persistent session (clean: false, QoS 1) to the device topics of the
 * devices homed here, and acknowledges each message to the broker only after it is committed to
 * the outbox, so the broker keeps (and redelivers) what the agent has not stored yet. Device
 * authentication and topic ACLs are the broker's job here (README "Devices (MQTT)"); presence comes
 * from the devices' retained presence messages and last wills. Devices bound to the unit are
 * shared between the unit's agents ($share groups).
 */
export class ExternalBroker {
  private client: MqttClient | undefined;
  private readonly directory: DeviceDirectory;
  private readonly commit: GroupCommit;
  private readonly messages: DeviceMessages;
  private subscribed = new Set<string>();
  /** Devices whose last presence message said online. */
  private readonly online = new Set<string>();

  constructor(private readonly deps: DeviceBrokerDeps, private readonly options: ExternalBrokerOptions) {
    this.directory = new DeviceDirectory(deps.cache, { node: deps.node, unit: deps.unit });
    this.commit = new GroupCommit(deps.outbox, options.groupCommit);
    this.commit.onCommitted = (_rows, ms) => deps.metrics.commitSeconds.observe(ms / 1000);
    this.messages = new DeviceMessages({
      directory: this.directory, commit: this.commit, metrics: deps.metrics, log: deps.log,
      publish: (topic, payload, retain) => this.client?.publish(topic, payload, { qos: 1, retain }, (err) => {
        if (err) deps.log.warn({ topic, err: err.message }, 'publish to device failed');
      }),
    });
  }

  /** Starts connecting (and keeps reconnecting); does not wait for the broker. */
  async start(): Promise<void> {
    this.directory.refresh();
    const client = mqtt.connect(this.options.url, { clientId: `outpost-agent-${this.deps.node}`.slice(0, 128), clean: false, reconnectPeriod: 2_000, connectTimeout: 10_000, protocolVersion: 4 });
    this.client = client;
    client.handleMessage = (packet, done) => {
      const device = deviceOfTopic(packet.topic);
      if (device !== undefined && packet.topic === topics.presence(device)) return this.presence(device, packet.payload, (err) => done(err ?? undefined));
      const kind = device === undefined ? undefined : publishKind(device, packet.topic);
      if (device === undefined || kind === undefined || this.directory.device(device) === undefined) return done();
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      this.messages.handle(device, kind, packet.topic, payload, (err) => done(err ?? undefined));
    };
    client.on('connect', () => {
      this.deps.log.info({ broker: redactBrokerUrl(this.options.url) }, 'connected to the external MQTT broker');
      this.subscribed = new Set();
      this.resubscribe();
      this.messages.publishDesired();
    });
    client.on('error', (err) => this.deps.log.warn({ broker: redactBrokerUrl(this.options.url), err: err.message }, 'external MQTT broker'));
  }

  /** Where the agent is a client (credentials hidden). */
  addresses(): { external: string } {
    return { external: redactBrokerUrl(this.options.url) };
  }

  async stop(): Promise<void> {
    // Commit first: the PUBACKs of what is committed then leave before the DISCONNECT, so a
    // stopped (not killed) agent is not sent those messages again.
    this.commit.flush();
    await this.client?.endAsync();
    this.commit.flush();
  }

  refresh(): void {
    this.directory.refresh();
    for (const device of [...this.online]) if (this.directory.device(device) === undefined) this.online.delete(device);
    this.deps.metrics.connected.set(this.online.size);
    this.messages.publishDesired();
    this.resubscribe();
  }

  /**
   * The presence convention of this mode (README "Devices (MQTT)"): `online` or `offline` on the
   * device's presence topic, retained, the offline one as the device's last will. An empty
   * payload (a retained message cleared) says nothing; anything else is refused on the errors topic.
   */
  private presence(device: string, raw: Buffer | string, done: (err?: Error | null) => void): void {
    const text = (Buffer.isBuffer(raw) ? raw.toString('utf8') : raw).trim();
    if (text === '' || this.directory.device(device) === undefined) return done(null);
    if (text !== 'online' && text !== 'offline') {
      this.messages.refuse(device, topics.presence(device), 'wrong-type', `presence must be "online" or "offline", got ${JSON.stringify(text.slice(0, 32))}`);
      return done(null);
    }
    const online = text === 'online';
    if (online) this.online.add(device);
    else this.online.delete(device);
    this.deps.metrics.connected.set(this.online.size);
    this.deps.log.info({ device }, online ? 'device online' : 'device offline');
    this.messages.presence(device, online, done);
  }

  private resubscribe(): void {
    const client = this.client;
    if (!client?.connected) return;
    const want = new Set<string>();
    for (const d of this.directory.all()) {
      const name = d.metadata.name;
      // A unit-bound device may be homed by any agent of the unit: one of them gets each message.
      const prefix = d.spec.unit !== undefined ? `$share/outpost-${d.spec.unit}/` : '';
      for (const t of [topics.telemetry(name), topics.reported(name), topics.get(name)]) want.add(prefix + t);
      // Not shared: a shared subscription gets no retained message, and each agent of the unit
      // should know whether the device is online (their reports merge at the hub by time).
      want.add(topics.presence(name));
    }
    const add = [...want].filter((t) => !this.subscribed.has(t));
    const remove = [...this.subscribed].filter((t) => !want.has(t));
    if (add.length > 0) client.subscribe(add, { qos: 1 }, (err) => err && this.deps.log.warn({ err: err.message }, 'subscribe to device topics failed'));
    if (remove.length > 0) client.unsubscribe(remove);
    this.subscribed = want;
  }
}

/**
 * The broker URL without its credentials, for logs and status. Everything from `//` to the last
 * `@` goes: a password holding `@` or `/` (unencoded) must not leave a piece of itself behind.
 */
export function redactBrokerUrl(url: string): string {
  return url.replace(/\/\/.*@/s, '//***@');
}
