import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../shared/logger.js';
import type { Registry } from '../records.js';
import { FailureDetector, type FailureDetectorOptions } from './failure-detector.js';
import type { MemberStatus, PeerFrame } from './peer-frames.js';
import { PeerLink, type PeerLinkOptions } from './peer-link.js';
import type { PeerMetrics } from './peer-metrics.js';
import { PeerServer } from './peer-server.js';
import { Replicator, type ReplicatorOptions } from './replicator.js';

/** One other agent of the unit, as the hub's peer list names it. */
export interface UnitPeer {
  node: string;
  /** host:port of its peer listener. */
  endpoint: string;
}

export interface PeerMeshOptions {
  /** Where to listen for peers; undefined = no listener (this node only dials out). */
  listen?: { host: string; port: number };
  detector?: FailureDetectorOptions;
  replicator?: ReplicatorOptions;
  link?: PeerLinkOptions;
}

/**
 * The agent's side of the unit mesh: a listener for peers' links, one dialled link per peer,
 * replication of registry records over them, and SWIM failure detection that marks the records of
 * suspected peers critical (registry.setOriginSuspected) until they answer or come back.
 */
export class PeerMesh {
  state: 'stopped' | 'running' = 'stopped';
  private readonly links = new Map<string, PeerLink>();
  private credentials: string[] = [];
  private readonly server: PeerServer | undefined;
  private readonly detector: FailureDetector;
  private readonly replicator: Replicator;
  private address: AddressInfo | undefined;
  private readonly listeners = new Set<() => void>();
  /** Endpoints from the hub's list, and newer ones peers told us in their hello (while the hub's entry is unchanged). */
  private hubEndpoints = new Map<string, string>();
  private readonly learned = new Map<string, string>();
  /** What we tell peers in our hello; set by the agent once the listener is bound. */
  advertised: string | undefined;

  constructor(private readonly deps: { registry: Registry; log: Logger; metrics: PeerMetrics }, private readonly options: PeerMeshOptions = {}) {
    const { registry, log, metrics } = deps;
    const secrets = () => this.credentials;
    this.detector = new FailureDetector(
      {
        self: registry.node,
        incarnation: registry.incarnation,
        log,
        send: (to, frame) => this.links.get(to)?.send(frame) ?? false,
        onStatus: (node, status, previous) => this.onStatus(node, status, previous),
        onRefuted: () => metrics.falseSuspicions.inc(),
      },
      options.detector,
    );
    this.replicator = new Replicator({ registry, log, metrics, links: () => this.links.values(), isMember: (origin) => this.hubEndpoints.has(origin) }, options.replicator);
    if (options.listen) {
      this.server = new PeerServer({
        self: registry.node, unit: registry.unit, incarnation: registry.incarnation, secrets, log,
        onRequest: (from, frame, reply, session) => this.onRequest(from, frame, reply, session),
        onPeerHello: (from, incarnation, endpoint) => this.onPeerHello(from, incarnation, endpoint),
        onRefused: () => metrics.refused.inc(),
      }, options.link);
    }
  }

  async start(): Promise<void> {
    if (this.server && this.options.listen) {
      this.address = await this.server.listen(this.options.listen.host, this.options.listen.port);
      this.deps.log.info({ peerListen: `${this.address.address}:${this.address.port}` }, 'peer listener up');
    }
    this.detector.start();
    this.replicator.start();
    this.state = 'running';
    this.updateGauges();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.replicator.stop();
    this.detector.stop();
    for (const l of this.links.values()) l.stop();
    this.links.clear();
    await this.server?.close();
  }

  /** The bound listener address (port 0 resolved), or undefined without a listener. */
  listenAddress(): AddressInfo | undefined {
    return this.address;
  }

  /** Applies the hub's peer list and unit credentials (current first). Idempotent. */
  setPeers(peers: readonly UnitPeer[], credentials: readonly string[]): void {
    this.credentials = [...credentials];
    const hub = new Map(peers.filter((p) => p.node !== this.deps.registry.node).map((p) => [p.node, p.endpoint]));
    // A learned endpoint holds until the hub's entry for that node changes (the hub heard of it too).
    for (const node of [...this.learned.keys()]) if (!hub.has(node) || hub.get(node) !== this.hubEndpoints.get(node)) this.learned.delete(node);
    // A node that left the list (left the unit, or stopped listening) no longer keeps its records
    // fresh here: they stay, critical, until it comes back.
    for (const node of this.hubEndpoints.keys()) if (!hub.has(node)) this.deps.registry.setOriginSuspected(node, true);
    for (const node of hub.keys()) if (!this.hubEndpoints.has(node)) this.deps.registry.setOriginSuspected(node, false);
    this.hubEndpoints = hub;
    this.applyLinks();
  }

  private applyLinks(): void {
    const want = new Map([...this.hubEndpoints].map(([node, endpoint]) => [node, this.learned.get(node) ?? endpoint]));
    for (const [node, link] of this.links) {
      if (want.get(node) !== link.endpoint) {
        link.stop();
        this.links.delete(node);
        this.replicator.linkDown(node);
      }
    }
    this.detector.setMembers([...want.keys()]);
    for (const [node, endpoint] of want) {
      if (this.links.has(node) || this.credentials.length === 0) continue;
      const link: PeerLink = new PeerLink({
        self: this.deps.registry.node, unit: this.deps.registry.unit, incarnation: this.deps.registry.incarnation, peer: node, endpoint,
        secrets: () => this.credentials, advertised: () => this.advertised, log: this.deps.log,
        onFrame: (frame) => this.onAnswer(link, frame),
        onUp: (incarnation) => {
          this.detector.learnIncarnation(node, incarnation);
          this.replicator.linkUp(link);
          this.updateGauges();
        },
        onDown: () => {
          this.replicator.linkDown(node);
          this.detector.probeSoon(node);
          this.updateGauges();
        },
        onRefused: () => this.deps.metrics.refused.inc(),
      }, this.options.link);
      this.links.set(node, link);
      link.start();
    }
    this.updateGauges();
  }

  /**
   * Which unit peers this node can reach (SWIM alive) and which not (dead), for the hub's peer
   * health votes. A suspect is in neither list: a suspicion is not yet evidence (a peer whose link
   * is still coming up after our start, or a busy one, is suspected for a moment), and a vote
   * can make the hub declare a node Down, which moves its work away.
   */
  reachability(): { reachable: string[]; unreachable: string[] } {
    const reachable: string[] = [];
    const unreachable: string[] = [];
    for (const m of this.detector.table()) {
      if (m.status === 'alive') reachable.push(m.node);
      else if (m.status === 'dead') unreachable.push(m.node);
    }
    return { reachable: reachable.sort(), unreachable: unreachable.sort() };
  }

  /** Peers with their status and whether our link to them is up (for /status). */
  peers(): { node: string; endpoint: string | undefined; status: MemberStatus; linkUp: boolean; synced: boolean }[] {
    return this.detector.table().map((m) => {
      const linkUp = this.links.get(m.node)?.up ?? false;
      return { node: m.node, endpoint: this.links.get(m.node)?.endpoint, status: m.status, linkUp, synced: linkUp && this.replicator.exchangedWith(m.node) };
    });
  }

  /** Called when a peer's reachability changes. Returns an unsubscribe. */
  onReachabilityChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onPeerHello(from: string, incarnation: number, endpoint: string | undefined): void {
    this.detector.learnIncarnation(from, incarnation);
    if (!endpoint || !this.hubEndpoints.has(from) || (this.learned.get(from) ?? this.hubEndpoints.get(from)) === endpoint) return;
    // A link that works stays where it is (the address we dial may differ from the one it tells, e.g. NAT).
    if (this.links.get(from)?.up) return;
    // An authenticated member listens elsewhere now (restarted on another address with the hub away).
    this.deps.log.info({ peer: from, endpoint }, 'peer told a new endpoint; dialling it there');
    this.learned.set(from, endpoint);
    if (this.learned.size > 10_000) this.learned.clear();
    this.applyLinks();
  }

  private onRequest(from: string, frame: PeerFrame, reply: (f: PeerFrame) => void, session: object): void {
    switch (frame.t) {
      case 'ping':
        return this.detector.handlePing(frame, reply);
      case 'ping-req':
        return this.detector.handlePingReq(frame, reply);
      case 'push':
      case 'digest':
      case 'records':
        return this.replicator.handleRequest(from, frame, reply, session);
      default:
        this.deps.log.warn({ peer: from, frame: frame.t }, 'refused a peer frame that is not a request');
        this.deps.metrics.refused.inc();
    }
  }

  private onAnswer(link: PeerLink, frame: PeerFrame): void {
    switch (frame.t) {
      case 'ack':
        return this.detector.handleAck(frame);
      case 'digest':
      case 'records':
        return this.replicator.handleAnswer(link, frame);
      default:
        this.deps.log.warn({ peer: link.peer, frame: frame.t }, 'refused a peer frame that is not an answer');
        this.deps.metrics.refused.inc();
    }
  }

  private onStatus(node: string, status: MemberStatus, previous: MemberStatus): void {
    this.deps.registry.setOriginSuspected(node, status !== 'alive');
    if (status === 'suspect' && previous === 'alive') this.deps.metrics.suspicions.inc();
    this.updateGauges();
    if ((status === 'alive') !== (previous === 'alive')) for (const l of this.listeners) l();
  }

  private updateGauges(): void {
    const counts: Record<MemberStatus, number> = { alive: 0, suspect: 0, dead: 0 };
    for (const m of this.detector.table()) counts[m.status]++;
    for (const [s, n] of Object.entries(counts)) this.deps.metrics.peers.set({ status: s }, n);
    this.deps.metrics.linksUp.set([...this.links.values()].filter((l) => l.up).length);
  }
}
