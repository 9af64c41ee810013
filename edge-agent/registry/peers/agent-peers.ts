import { networkInterfaces } from 'node:os';
import type { Registry as PromRegistry } from 'prom-client';
import type { NodeUnit, UnitPeers } from '../../../shared/api/index.js';
import type { Logger } from '../../../shared/logger.js';
import type { DesiredCache } from '../../cache/desired-cache.js';
import type { Outbox } from '../../cache/outbox.js';
import type { Registry } from '../records.js';
import { createPeerMetrics } from './peer-metrics.js';
import { PeerMesh, type PeerMeshOptions } from './peer-mesh.js';

export interface AgentPeersOptions {
  /** `--peer-listen host:port` (default 0.0.0.0:7946); undefined = `none`: no listener, no replication. */
  listen?: { host: string; port: number };
  /** `--peer-advertise host:port`; default: the listen host (the first non-loopback IPv4 when it is 0.0.0.0 or ::) and the bound port. */
  advertise?: string;
  /** The peer health vote is re-sent this often while the unit has autonomy.peerHealth, ms. Default 10 000. */
  voteIntervalMs?: number;
  detector?: PeerMeshOptions['detector'];
  replicator?: PeerMeshOptions['replicator'];
}

/** host:port with brackets for IPv6. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The address peers should dial when we listen on `host`: itself, or for a wildcard the first non-loopback IPv4. */
export function advertisedHost(host: string): string {
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return host;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * The agent's registry replication: the peer mesh fed with the unit's peer list from the desired
 * cache (UnitPeers, delivered by the hub, so it works offline), the endpoint the agent advertises
 * in its hello, and the peer health votes it queues in the outbox.
 */
export class AgentPeers {
  readonly name = 'registry-peers';
  private readonly mesh: PeerMesh | undefined;
  private advertised: string | undefined;
  private error: string | undefined;
  private voteTimer: NodeJS.Timeout | undefined;
  private lastVote = '';
  private lastVoteAt = 0;
  private lastPeers = '';

  constructor(
    private readonly deps: { registry: Registry; cache: DesiredCache; outbox: Outbox; log: Logger; metrics: PromRegistry },
    private readonly options: AgentPeersOptions,
  ) {
    if (options.listen) {
      this.mesh = new PeerMesh(
        { registry: deps.registry, log: deps.log, metrics: createPeerMetrics(deps.metrics) },
        { listen: options.listen, ...(options.detector ? { detector: options.detector } : {}), ...(options.replicator ? { replicator: options.replicator } : {}) },
      );
    }
  }

  /** A listener that cannot bind (port taken) is reported, not fatal: workloads come first. */
  async start(): Promise<void> {
    if (!this.mesh || !this.options.listen) {
      this.deps.log.info('no peer listener (--peer-listen none): the registry is not replicated in the unit');
      return;
    }
    try {
      await this.mesh.start();
    } catch (err) {
      this.error = `peer listener not started on ${joinHostPort(this.options.listen.host, this.options.listen.port)}: ${(err as Error).message}`;
      this.deps.log.error({ err }, this.error);
      await this.mesh.stop().catch(() => undefined);
      return;
    }
    const port = this.mesh.listenAddress()?.port ?? this.options.listen.port;
    this.advertised = this.options.advertise ?? joinHostPort(advertisedHost(this.options.listen.host), port);
    this.mesh.advertised = this.advertised;
    this.deps.log.info({ peerAdvertise: this.advertised }, 'registry peer endpoint');
    this.refresh();
    this.mesh.onReachabilityChange(() => this.vote(false));
    this.voteTimer = setInterval(() => this.vote(true), Math.min(this.options.voteIntervalMs ?? 10_000, 10_000));
    this.voteTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.voteTimer);
    if (!this.error) await this.mesh?.stop();
  }

  /** What the agent advertises in its hello (undefined without a listener). */
  endpoint(): string | undefined {
    return this.advertised;
  }

  /** Re-reads the unit's peer list from the cache (after each sync). */
  refresh(): void {
    if (!this.mesh || this.error || this.mesh.state !== 'running') return;
    const peers = this.deps.cache.get<UnitPeers>('UnitPeers', this.deps.registry.unit);
    const text = JSON.stringify(peers?.spec ?? null);
    if (text === this.lastPeers) return;
    this.lastPeers = text;
    const credentials = peers ? [peers.spec.credential, ...(peers.spec.previousCredential ? [peers.spec.previousCredential] : [])] : [];
    this.mesh.setPeers(peers?.spec.peers ?? [], credentials);
    this.deps.log.info({ peers: peers?.spec.peers.length ?? 0 }, 'unit peer list applied');
    this.vote(false);
  }

  status(): Record<string, unknown> {
    return {
      ...(this.advertised ? { endpoint: this.advertised } : {}),
      ...(this.error ? { error: this.error } : {}),
      peers: this.mesh && !this.error ? this.mesh.peers() : [],
    };
  }

  /** Queues this agent's view of its peers (coalesced) while its unit asks for peer health votes. */
  private vote(periodic: boolean): void {
    if (!this.mesh || this.error) return;
    const unit = this.deps.cache.get<NodeUnit>('NodeUnit', this.deps.registry.unit);
    if (unit?.spec?.autonomy?.peerHealth !== true) return;
    const body = this.mesh.reachability();
    const text = JSON.stringify(body);
    const now = Date.now();
    const interval = this.options.voteIntervalMs ?? 10_000;
    if (text === this.lastVote && (!periodic || now - this.lastVoteAt < interval - 50)) return;
    // Called from timers and SWIM status changes: a failing outbox write (disk full) must not end
    // the agent. The vote is not remembered as sent, so the next call tries again.
    try {
      this.deps.outbox.put('peer-health', body, 'peer-health');
    } catch (err) {
      this.deps.log.error({ err }, 'could not queue the peer health vote; will retry');
      return;
    }
    this.lastVote = text;
    this.lastVoteAt = now;
  }
}
