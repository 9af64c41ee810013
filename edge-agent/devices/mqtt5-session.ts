import { Duplex } from 'node:stream';
import mqttPacket, { type IConnackPacket, type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import { DEFAULT_MAX_PACKET_BYTES } from './mqtt-packet-limit.js';
import { ackToV4, connackReason, connectToV4, publishToV4, Reason, subscribeRefusal, subscribeToV4, unsubscribeToV4 } from './mqtt5-translate.js';

export interface Mqtt5SessionOptions {
  /** Topic aliases a client may set (CONNACK Topic Alias Maximum). Default 32. */
  topicAliasMaximum?: number;
  /** Client packets held while the CONNECT is being authenticated before the socket is paused. Default 64. */
  maxHeldPackets?: number;
  /** A subscription filter the device may use: UNSUBACK says "no subscription existed" for the others. */
  maySubscribe?: (topic: string) => boolean;
  /** Largest packet a client may send, bytes of remaining length (CONNACK Maximum Packet Size). Default 256 KiB. */
  maxPacketBytes?: number;
  /** Called when a packet announces more than maxPacketBytes, before the connection ends (0x95). */
  onPacketTooLarge?: (announced: number) => void;
}

const CLOSE_GRACE_MS = 1_000;

/**
 * One MQTT 5 client in front of aedes (which speaks 3.1.1): the client's v5 packets are parsed,
 * translated and fed to aedes through `inner` (the stream aedes handles, in memory); what aedes
 * writes to `inner` is parsed as 3.1.1 and sent to the client as v5, with the reason codes v5
 * has. Packets the client sends after CONNECT wait until aedes answered it, so the broker's
 * per-device checks see an authenticated client. Back-pressure both ways: the client socket is
 * paused while aedes has not read what it got, and aedes's writes complete only once the client
 * socket drained.
 */
export class Mqtt5Session {
  /** The stream aedes reads 3.1.1 from and writes 3.1.1 to. */
  readonly inner: Duplex;
  private readonly fromClient = mqttPacket.parser({ protocolVersion: 5 });
  private readonly fromBroker = mqttPacket.parser({ protocolVersion: 4 });
  private readonly aliasMax: number;
  private readonly maxHeld: number;
  private readonly maxPacket: number;
  private state: 'connecting' | 'connected' | 'closed' = 'connecting';
  private held: Packet[] = [];
  private innerFull = false;
  private readonly aliases = new Map<number, string>();
  private readonly subscribing = new Map<number, string[]>();
  private readonly unsubscribing = new Map<number, number[]>();
  private readonly refused = new Map<number, string>();
  private readonly swallowPubcomp = new Set<number>();
  private clientMaxPacket = Infinity;
  private problemInfo = true;
  private connectRefusal: { reason: number; message: string } | undefined;
  private closeReason: number | undefined;
  private clientDisconnected = false;
  private connectSeen = false;
  private writeWaiters: Array<() => void> = [];

  constructor(private readonly socket: Duplex, head: Buffer, private readonly options: Mqtt5SessionOptions = {}) {
    this.aliasMax = options.topicAliasMaximum ?? 32;
    this.maxHeld = options.maxHeldPackets ?? 64;
    this.maxPacket = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    this.inner = new Duplex({
      read: () => {
        this.innerFull = false;
        this.resumeIfFree();
      },
      write: (chunk: Buffer, _enc, done) => {
        this.fromBroker.parse(chunk);
        if (this.socket.writableNeedDrain) this.writeWaiters.push(() => done());
        else done();
      },
      final: (done) => {
        this.closeClient();
        done();
      },
      destroy: (err, done) => {
        this.closeClient();
        done(err);
      },
    });
    this.fromClient.on('packet', (p: Packet) => this.onClientPacket(p));
    this.fromClient.on('error', (err: Error) => this.disconnect(Reason.malformedPacket, err.message));
    this.fromBroker.on('packet', (p: Packet) => this.onBrokerPacket(p));
    this.fromBroker.on('error', () => this.disconnect(Reason.unspecified, 'internal broker error'));
    socket.on('data', (chunk: Buffer) => this.fromClientBytes(chunk));
    socket.on('drain', () => this.releaseWriters());
    socket.on('error', () => this.inner.destroy());
    socket.on('close', () => {
      this.state = 'closed';
      this.releaseWriters(); // aedes's pending writes complete; it sees the close next
      this.inner.destroy();
    });
    this.fromClientBytes(head);
    this.resumeIfFree();
  }

  /**
   * Parses client bytes, and ends the connection (0x95) as soon as a packet's header announces more
   * than the maximum, before its body is buffered: a device cannot make the agent hold megabytes.
   */
  private fromClientBytes(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.fromClient.parse(chunk);
    // The parser's packet in progress (mqtt-packet keeps its announced length there; -1 = none yet).
    const announced = (this.fromClient as unknown as { packet?: { length?: number } }).packet?.length ?? -1;
    if (announced > this.maxPacket) {
      this.options.onPacketTooLarge?.(announced);
      this.disconnect(Reason.packetTooLarge, `packet of ${announced} bytes; at most ${this.maxPacket}`);
    }
  }

  /** The broker refused the CONNECT for this reason: the CONNACK carries it instead of the 3.1.1 code's. */
  refuseConnect(reason: number, message: string): void {
    this.connectRefusal = { reason, message };
  }

  /** The broker refused this publish (not the device's topic): its PUBACK / PUBREC gets 0x87. */
  refusePublish(messageId: number, topic: string): void {
    this.refused.set(messageId, topic);
  }

  /** Why the broker is about to close this connection (sent to the client in DISCONNECT). */
  closingBecause(reason: number): void {
    this.closeReason = reason;
  }

  private onClientPacket(p: Packet): void {
    if (this.state === 'closed') return;
    if (p.cmd === 'connect') {
      if (this.connectSeen) return this.disconnect(Reason.protocolError, 'second CONNECT');
      this.connectSeen = true;
      return this.onConnect(p);
    }
    if (this.state === 'connecting') {
      this.held.push(p);
      if (this.held.length >= this.maxHeld) this.socket.pause();
      return;
    }
    this.forward(p);
  }

  private onConnect(p: IConnectPacket): void {
    if (p.properties?.authenticationMethod !== undefined) {
      return this.refuseBeforeBroker(Reason.badAuthenticationMethod, 'enhanced authentication is not supported: use a username and password or a client certificate');
    }
    // MQTT 5 allows both; 3.1.1 (what aedes reads) cannot express them.
    if (p.password !== undefined && p.username === undefined) return this.refuseBeforeBroker(Reason.badUserNameOrPassword, 'a password needs a user name');
    if (!p.clientId && (p.properties?.sessionExpiryInterval ?? 0) > 0) return this.refuseBeforeBroker(Reason.clientIdNotValid, 'a session with an expiry needs a client id');
    if (p.properties?.maximumPacketSize !== undefined) this.clientMaxPacket = p.properties.maximumPacketSize;
    if (p.properties?.requestProblemInformation === false) this.problemInfo = false;
    // The CONNECT itself goes through at once: aedes is waiting for it.
    this.toBroker(connectToV4(p));
  }

  /** A CONNACK refusing the CONNECT before aedes saw it, then the connection ends. */
  private refuseBeforeBroker(reason: number, message: string): void {
    this.sendToClient({ cmd: 'connack', sessionPresent: false, reasonCode: reason, properties: { reasonString: message } });
    this.state = 'closed';
    this.closeClient();
    this.inner.destroy(); // aedes never saw a CONNECT: it lets go of the connection now
  }

  private forward(p: Packet): void {
    switch (p.cmd) {
      case 'publish':
        return this.onPublish(p);
      case 'subscribe':
        this.subscribing.set(p.messageId!, p.subscriptions.map((s) => s.topic));
        return this.toBroker(subscribeToV4(p));
      case 'unsubscribe': {
        const may = this.options.maySubscribe ?? (() => true);
        this.unsubscribing.set(p.messageId!, p.unsubscriptions.map((t) => (may(t) ? Reason.success : Reason.noSubscriptionExisted)));
        return this.toBroker(unsubscribeToV4(p));
      }
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
        return this.toBroker(ackToV4(p));
      case 'pingreq':
        return this.toBroker({ cmd: 'pingreq' });
      case 'disconnect':
        this.clientDisconnected = true;
        // 0x04 "disconnect with will message": 3.1.1 publishes the will when the connection just drops.
        if (p.reasonCode === 0x04) this.inner.push(null);
        else this.toBroker({ cmd: 'disconnect' });
        return;
      default:
        return this.disconnect(Reason.protocolError, `unexpected ${p.cmd} packet`);
    }
  }

  private onPublish(p: IPublishPacket): void {
    const alias = p.properties?.topicAlias;
    let topic = p.topic;
    if (alias !== undefined) {
      if (alias < 1 || alias > this.aliasMax) return this.disconnect(Reason.topicAliasInvalid, `topic alias ${alias} is not in 1..${this.aliasMax}`);
      if (topic !== '') this.aliases.set(alias, topic);
      else {
        const known = this.aliases.get(alias);
        if (known === undefined) return this.disconnect(Reason.protocolError, `topic alias ${alias} has no topic yet`);
        topic = known;
      }
    }
    this.toBroker(publishToV4(p, topic));
  }

  private onBrokerPacket(p: Packet): void {
    switch (p.cmd) {
      case 'connack':
        return this.onConnack(p);
      case 'suback': {
        const filters = this.subscribing.get(p.messageId!) ?? [];
        this.subscribing.delete(p.messageId!);
        const granted = (p.granted as number[]).map((g, i) => (g === 0x80 ? subscribeRefusal(filters[i] ?? '') : g));
        return this.sendToClient({ cmd: 'suback', messageId: p.messageId!, granted });
      }
      case 'unsuback': {
        const reasons = this.unsubscribing.get(p.messageId!) ?? [];
        this.unsubscribing.delete(p.messageId!);
        return this.sendToClient({ cmd: 'unsuback', messageId: p.messageId!, granted: reasons });
      }
      case 'puback':
      case 'pubrec': {
        const topic = this.refused.get(p.messageId!);
        if (topic === undefined) return this.sendToClient({ cmd: p.cmd, messageId: p.messageId! });
        this.refused.delete(p.messageId!);
        this.sendToClient({ cmd: p.cmd, messageId: p.messageId!, reasonCode: Reason.notAuthorized, ...(this.problemInfo ? { properties: { reasonString: `publishing on ${topic.slice(0, 256)} is not allowed` } } : {}) });
        if (p.cmd === 'pubrec') {
          // A PUBREC >= 0x80 ends the exchange for the client; complete it on the broker's side.
          this.swallowPubcomp.add(p.messageId!);
          this.toBroker({ cmd: 'pubrel', messageId: p.messageId! });
        }
        return;
      }
      case 'pubcomp':
        if (this.swallowPubcomp.delete(p.messageId!)) return;
        return this.sendToClient({ cmd: 'pubcomp', messageId: p.messageId! });
      case 'publish': {
        const out: IPublishPacket = { cmd: 'publish', topic: p.topic, payload: p.payload, qos: p.qos, dup: p.dup, retain: p.retain };
        if (p.messageId !== undefined) out.messageId = p.messageId;
        return this.sendToClient(out);
      }
      default:
        return this.sendToClient(p);
    }
  }

  private onConnack(p: IConnackPacket): void {
    const refusal = this.connectRefusal;
    const reasonCode = p.returnCode === 0 ? Reason.success : (refusal?.reason ?? connackReason(p.returnCode));
    if (reasonCode !== Reason.success) {
      this.state = 'closed';
      this.held = [];
      return this.sendToClient({ cmd: 'connack', sessionPresent: false, reasonCode, ...(refusal ? { properties: { reasonString: refusal.message.slice(0, 256) } } : {}) });
    }
    this.sendToClient({
      cmd: 'connack', sessionPresent: p.sessionPresent, reasonCode,
      properties: { topicAliasMaximum: this.aliasMax, maximumPacketSize: this.maxPacket, wildcardSubscriptionAvailable: false, sharedSubscriptionAvailable: false, subscriptionIdentifiersAvailable: false },
    });
    this.state = 'connected';
    const held = this.held;
    this.held = [];
    for (const h of held) this.forward(h);
    this.resumeIfFree();
  }

  private toBroker(p: Packet): void {
    if (this.inner.destroyed) return;
    let bytes: Buffer;
    try {
      bytes = mqttPacket.generate(p, { protocolVersion: 4 });
    } catch (err) {
      // A v5 packet with no 3.1.1 form: it ends this connection, never the agent.
      return this.disconnect(Reason.protocolError, `cannot serve this ${p.cmd} packet: ${(err as Error).message}`);
    }
    if (!this.inner.push(bytes)) {
      this.innerFull = true;
      this.socket.pause();
    }
  }

  private sendToClient(p: Packet): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    let bytes: Buffer;
    try {
      bytes = mqttPacket.generate(p, { protocolVersion: 5 });
    } catch {
      this.socket.destroy(); // a packet from aedes with no v5 form: end this connection only
      return;
    }
    // MQTT 5 3.1.2.11.4: never send a packet over the client's Maximum Packet Size (the client would disconnect).
    if (bytes.length > this.clientMaxPacket) return;
    this.socket.write(bytes);
  }

  private releaseWriters(): void {
    const waiters = this.writeWaiters;
    this.writeWaiters = [];
    for (const w of waiters) w();
  }

  private resumeIfFree(): void {
    if (this.state === 'closed' || this.innerFull || this.held.length >= this.maxHeld) return;
    this.socket.resume();
  }

  /** Sends DISCONNECT with `reason` and closes both sides. */
  private disconnect(reason: number, message: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.sendToClient({ cmd: 'disconnect', reasonCode: reason, ...(this.problemInfo ? { properties: { reasonString: message.slice(0, 256) } } : {}) });
    this.closeClient();
    this.inner.destroy();
  }

  /** aedes closed the connection (or the session gave up): tell a v5 client why when known, then end. */
  private closeClient(): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (this.state !== 'closed' && !this.clientDisconnected && this.closeReason !== undefined) {
      this.sendToClient({ cmd: 'disconnect', reasonCode: this.closeReason });
    }
    this.state = 'closed';
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }
}
