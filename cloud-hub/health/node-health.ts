import type { EdgeNode, EdgeNodeStatus, NodeUnit } from '../../shared/api/index.js';
import { parseDuration } from '../../shared/duration.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { HelloFrame } from '../../shared/protocol/frames.js';
import type { ObjectCache } from '../cache/object-cache.js';
import type { HubMetrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { peerVoteVerdict, type PeerVotes } from '../peers/peer-votes.js';

export interface NodeHealthOptions {
  /** Coalesced status writes happen at most this often per node, ms. Default 1000. */
  flushIntervalMs?: number;
  /** How often `lastSeen` of a connected node is refreshed in the store, ms. Default 60 000. */
  lastSeenIntervalMs?: number;
  /** After a hub start, nodes still recorded Ready without a session for this long become Disconnected. */
  startupGraceMs?: number;
  /**
   * Kubernetes mode (several replicas, each holding some sessions): the leader marks a node
   * Disconnected when no session for it is on the leader and its `lastSeen` (renewed every
   * `lastSeenIntervalMs` by the replica holding the session) is older than `staleAfterMs`; the
   * startup grace check is replaced by this one. Each replica re-asserts Ready for the nodes it
   * holds. Absent (SQLite mode): one hub sees every session, as before.
   */
  replicated?: { staleAfterMs: number };
}

/**
 * Owns EdgeNode.status: phase (Ready while a session is live, Disconnected since it closed),
 * lastSeen, applied revision and what the agent reports. Writes are coalesced per node: liveness
 * is tracked in memory and written on change and at a slow interval, not on every heartbeat.
 * A disconnected node keeps its instances: nothing here evicts or reschedules.
 */
export class NodeHealth {
  private readonly pending = new Map<string, Partial<EdgeNodeStatus>>();
  private readonly lastSeenWritten = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private startupTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private markingStale = false;
  /** What this hub wrote last per node, until the cache shows that version (see freshest()). */
  private readonly written = new Map<string, EdgeNode>();
  private readonly flushIntervalMs: number;
  private readonly lastSeenIntervalMs: number;
  private readonly startupGraceMs: number;

  constructor(
    private readonly deps: {
      store: Store; cache: ObjectCache; log: Logger; metrics: HubMetrics; now: () => number; isConnected(node: string): boolean; peerVotes?: PeerVotes;
      /** Node lifecycle decisions (Disconnected by deadline, Down by policy) are the leader's only. Default: always leader. */
      isLeader?: () => boolean;
    },
    private readonly options: NodeHealthOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.lastSeenIntervalMs = options.lastSeenIntervalMs ?? 60_000;
    this.startupGraceMs = options.startupGraceMs ?? 30_000;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.flushIntervalMs);
    this.timer.unref();
    if (this.options.replicated) return;
    this.startupTimer = setTimeout(() => this.markStaleReadyNodes(), this.startupGraceMs);
    this.startupTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.startupTimer);
    await this.flush();
  }

  connected(node: string, hello: HelloFrame): void {
    const now = new Date(this.deps.now()).toISOString();
    const patch: Partial<EdgeNodeStatus> = { phase: 'Ready', lastSeen: now, appliedRevision: hello.appliedRevision, agentVersion: hello.agentVersion, reason: undefined };
    if (this.currentPhase(node) !== 'Ready') patch.since = now;
    if (hello.hostname) patch.hostname = hello.hostname;
    if (hello.capacity) patch.capacity = hello.capacity;
    // Absent when the agent runs without a peer listener: then it leaves its unit's peer list.
    patch.peerEndpoint = hello.peerEndpoint;
    this.patch(node, patch);
    this.lastSeenWritten.set(node, this.deps.now());
    void this.flushSoon();
  }

  disconnected(node: string): void {
    const now = new Date(this.deps.now()).toISOString();
    // A Down node that flickers (connects and drops before hello) stays Down.
    if (this.currentPhase(node) === 'Down') return;
    this.patch(node, { phase: 'Disconnected', since: now, lastSeen: now });
    void this.flushSoon();
  }

  acked(node: string, revision: number): void {
    this.patch(node, { appliedRevision: revision });
  }

  reported(node: string, body: Pick<EdgeNodeStatus, 'outboxDepth' | 'droppedEvents' | 'instances' | 'conditions'>): void {
    const patch: Partial<EdgeNodeStatus> = {};
    if (body.conditions !== undefined) patch.conditions = body.conditions;
    if (body.outboxDepth !== undefined) patch.outboxDepth = body.outboxDepth;
    if (body.droppedEvents !== undefined) patch.droppedEvents = body.droppedEvents;
    if (body.instances !== undefined) patch.instances = body.instances;
    this.patch(node, patch);
  }

  /** Writes every pending change now. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writePending());
    return this.flushing;
  }

  private flushSoon(): Promise<void> {
    return new Promise((resolve) => setImmediate(() => resolve(this.flush())));
  }

  private currentPhase(node: string): string | undefined {
    return this.pending.get(node)?.phase ?? this.freshest(node)?.status?.phase;
  }

  /**
   * The node as this hub last knows it: the cache, or what this hub itself wrote when the cache has
   * not caught up with that write yet. With SQLite the cache follows within the same tick; with
   * the Kubernetes store the watch lags (hold-back, API latency), and a status built on the stale
   * cache would overwrite the phase just written (a node stayed Pending while connected).
   */
  private freshest(node: string): EdgeNode | undefined {
    const cached = this.deps.cache.get('EdgeNode', node) as EdgeNode | undefined;
    const mine = this.written.get(node);
    if (!mine) return cached;
    if (!cached || Number(cached.metadata.resourceVersion) >= Number(mine.metadata.resourceVersion)) {
      this.written.delete(node);
      return cached;
    }
    return mine;
  }

  private patch(node: string, patch: Partial<EdgeNodeStatus>): void {
    this.pending.set(node, { ...this.pending.get(node), ...patch });
  }

  private tick(): void {
    const now = this.deps.now();
    for (const [node, written] of this.lastSeenWritten) {
      if (!this.deps.isConnected(node)) {
        this.lastSeenWritten.delete(node);
      } else if (now - written >= this.lastSeenIntervalMs) {
        this.lastSeenWritten.set(node, now);
        this.patch(node, { lastSeen: new Date(now).toISOString() });
      }
    }
    if (this.options.replicated) this.reassertHeldNodes(now);
    if (this.deps.isLeader?.() ?? true) {
      this.markOverdueNodesDown(now);
      if (this.options.replicated) void this.markStaleNodes(now, this.options.replicated.staleAfterMs);
    }
    this.updatePhaseGauge();
    void this.flush();
  }

  /**
   * The node lifecycle policy: a node Disconnected for longer than its unit's
   * `autonomy.rescheduleAfter` becomes Down (and the scheduler moves its instances). Without that
   * setting (the default) a node is never declared Down for being offline, however long.
   */
  private markOverdueNodesDown(now: number): void {
    for (const obj of this.deps.cache.list('EdgeNode')) {
      const node = obj as EdgeNode;
      const name = node.metadata.name;
      const phase = this.currentPhase(name);
      if (phase !== 'Disconnected' || this.deps.isConnected(name)) continue;
      const unit = this.deps.cache.get('NodeUnit', node.spec.unit) as NodeUnit | undefined;
      const since = Date.parse(this.pending.get(name)?.since ?? node.status?.since ?? '');
      const byVote = this.deps.peerVotes && unit?.spec?.autonomy?.peerHealth === true
        ? peerVoteVerdict(node, unit, this.unitNodes(node.spec.unit), (n) => this.connectedPeer(n), this.deps.peerVotes, Number.isNaN(since) ? undefined : since)
        : undefined;
      if (byVote) {
        this.deps.log.warn({ node: name, unit: node.spec.unit, reason: byVote }, 'node declared Down by its unit\'s peer health votes');
        this.patch(name, { phase: 'Down', since: new Date(now).toISOString(), reason: `unreachable from its unit: ${byVote}` });
        continue;
      }
      const after = unit?.spec?.autonomy?.rescheduleAfter;
      if (!after) continue;
      if (Number.isNaN(since) || now - since < parseDuration(after)) continue;
      const reason = `disconnected since ${new Date(since).toISOString()}, longer than the unit's rescheduleAfter (${after})`;
      this.deps.log.warn({ node: name, unit: node.spec.unit, rescheduleAfter: after }, 'node declared Down by its unit\'s policy');
      this.patch(name, { phase: 'Down', since: new Date(now).toISOString(), reason });
    }
  }

  /**
   * Kubernetes mode: a node whose session this replica holds is Ready, whatever another replica
   * wrote last (the replica that lost its session, or the leader judging an old renew).
   */
  private reassertHeldNodes(now: number): void {
    for (const [node, written] of this.lastSeenWritten) {
      // Right after this replica's own write the cache may not show it yet (watch lag): wait a little.
      if (now - written < 5 * this.flushIntervalMs) continue;
      const phase = this.currentPhase(node);
      if (phase === 'Ready' || !this.deps.isConnected(node)) continue;
      this.deps.log.info({ node, phase }, 'node recorded not Ready while its session is here; writing Ready');
      this.patch(node, { phase: 'Ready', since: new Date(now).toISOString(), lastSeen: new Date(now).toISOString(), reason: undefined });
      this.lastSeenWritten.set(node, now);
    }
  }

  /**
   * Kubernetes mode, leader only: a Ready node with no session here whose renew (`lastSeen`) is
   * older than the deadline lost its replica (killed, partitioned) and did not come back on another
   * one. Written with the judged resourceVersion as precondition, so a renew or reconnect written
   * meanwhile by the replica that holds the node wins.
   */
  private async markStaleNodes(now: number, staleAfterMs: number): Promise<void> {
    if (this.markingStale) return;
    this.markingStale = true;
    try {
      for (const obj of this.deps.cache.list('EdgeNode')) {
        const name = obj.metadata.name;
        if (!this.isStale(obj as EdgeNode, now, staleAfterMs)) continue;
        try {
          if (await this.writeStale(obj as EdgeNode)) continue;
          // The cache was behind (or a renew just landed): judge the stored object once more.
          const fresh = (await this.deps.store.get('EdgeNode', name)) as EdgeNode | undefined;
          if (fresh && this.isStale(fresh, now, staleAfterMs) && !(await this.writeStale(fresh))) {
            this.deps.log.debug({ node: name }, 'stale node changed while being marked; judged again next tick');
          }
        } catch (err) {
          if (!isOutpostError(err, 'NOT_FOUND')) this.deps.log.warn({ err, node: name }, 'marking a stale node Disconnected failed; will retry');
        }
      }
    } finally {
      this.markingStale = false;
    }
  }

  /**
   * A peer counted by the peerHealth rule. With replicas, a peer connected to another replica counts
   * too (recorded Ready), and since its vote went to that replica, it counts against declaring the
   * node Down: votes seen by the leader alone can never outvote peers it does not hear from.
   */
  private connectedPeer(node: string): boolean {
    if (this.deps.isConnected(node)) return true;
    return this.options.replicated !== undefined && (this.deps.cache.get('EdgeNode', node) as EdgeNode | undefined)?.status?.phase === 'Ready';
  }

  private isStale(node: EdgeNode, now: number, staleAfterMs: number): boolean {
    const name = node.metadata.name;
    if (node.status?.phase !== 'Ready' || this.pending.has(name) || this.deps.isConnected(name)) return false;
    const renewed = Date.parse(node.status.lastSeen ?? '');
    return Number.isNaN(renewed) || now - renewed > staleAfterMs;
  }

  /** Writes Disconnected with the judged resourceVersion; false when that version is no longer current. */
  private async writeStale(node: EdgeNode): Promise<boolean> {
    const status = node.status as EdgeNodeStatus;
    const since = Number.isNaN(Date.parse(status.lastSeen ?? '')) ? new Date(this.deps.now()).toISOString() : status.lastSeen as string;
    try {
      await this.deps.store.updateStatus('EdgeNode', node.metadata.name, { ...status, phase: 'Disconnected', since }, { resourceVersion: node.metadata.resourceVersion as string });
    } catch (err) {
      if (isOutpostError(err, 'CONFLICT')) return false;
      throw err;
    }
    this.deps.log.info({ node: node.metadata.name, lastSeen: status.lastSeen }, 'node not renewed by any replica; marked Disconnected');
    return true;
  }

  private remember(stored: EdgeNode): void {
    const cached = this.deps.cache.get('EdgeNode', stored.metadata.name);
    if (cached && Number(cached.metadata.resourceVersion) >= Number(stored.metadata.resourceVersion)) return;
    this.written.set(stored.metadata.name, stored);
  }

  private unitNodes(unit: string): EdgeNode[] {
    return (this.deps.cache.list('EdgeNode') as EdgeNode[]).filter((n) => n.spec.unit === unit);
  }

  private markStaleReadyNodes(): void {
    for (const obj of this.deps.cache.list('EdgeNode')) {
      const node = obj as EdgeNode;
      if (node.status?.phase === 'Ready' && !this.deps.isConnected(node.metadata.name)) {
        this.deps.log.info({ node: node.metadata.name }, 'node did not reconnect after hub start; marking Disconnected');
        this.patch(node.metadata.name, { phase: 'Disconnected', since: node.status.lastSeen ?? new Date(this.deps.now()).toISOString() });
      }
    }
    void this.flush();
  }

  private updatePhaseGauge(): void {
    const counts: Record<string, number> = { Pending: 0, Ready: 0, Disconnected: 0, Down: 0 };
    for (const obj of this.deps.cache.list('EdgeNode')) {
      const phase = (obj as EdgeNode).status?.phase ?? 'Pending';
      counts[phase] = (counts[phase] ?? 0) + 1;
    }
    for (const [phase, n] of Object.entries(counts)) this.deps.metrics.nodes.set({ phase }, n);
  }

  private async writePending(): Promise<void> {
    const batch: { node: string; patch: Partial<EdgeNodeStatus>; status: EdgeNodeStatus }[] = [];
    for (const [node, patch] of this.pending) {
      const current = this.freshest(node);
      if (!current) continue; // deleted meanwhile
      const status: EdgeNodeStatus = { phase: 'Pending', ...current.status, ...patch };
      if (status.reason === undefined) delete status.reason;
      if (status.peerEndpoint === undefined) delete status.peerEndpoint;
      batch.push({ node, patch, status });
    }
    this.pending.clear();
    if (batch.length === 0) return;
    const failed = (node: string, patch: Partial<EdgeNodeStatus>, err: unknown) => {
      if (isOutpostError(err, 'NOT_FOUND')) return;
      this.deps.log.error({ err, node }, 'writing node status failed; will retry');
      this.pending.set(node, { ...patch, ...this.pending.get(node) });
    };
    const { store } = this.deps;
    if (store.updateStatuses) {
      // One transaction per flush (issue 7: 10 000 nodes reconnecting are 10 000 status writes).
      let results: (unknown | Error)[];
      try {
        results = await store.updateStatuses('EdgeNode', batch.map((b) => ({ name: b.node, status: b.status })));
      } catch (err) {
        results = batch.map(() => err);
      }
      batch.forEach((b, i) => {
        const r = results[i];
        if (r instanceof Error) failed(b.node, b.patch, r);
        else if (r && typeof r === 'object') this.remember(r as EdgeNode);
      });
      return;
    }
    for (const { node, patch, status } of batch) {
      try {
        this.remember((await store.updateStatus('EdgeNode', node, status)) as EdgeNode);
      } catch (err) {
        failed(node, patch, err);
      }
    }
  }
}
