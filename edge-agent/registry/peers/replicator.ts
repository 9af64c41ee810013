import type { Logger } from '../../../shared/logger.js';
import type { Registry, RegistryRecord } from '../records.js';
import { DigestIndex, differingOrigins, staleIncarnationTombstones } from './digest.js';
import { chunkRecords, MAX_RECORDS_PER_FRAME, recordProblem, type OriginDigest, type PeerFrame, type PeerFrameOf } from './peer-frames.js';
import type { PeerMetrics } from './peer-metrics.js';

/** What the replicator needs of a link: a name, a send, and how full its socket is. */
export interface ReplicaLink {
  readonly peer: string;
  readonly up: boolean;
  readonly bufferedAmount: number;
  send(frame: PeerFrame): boolean;
}

export interface ReplicatorOptions {
  /** Digest exchange with every linked peer this often, ms. Default 2000. */
  antiEntropyMs?: number;
  /** Own records queued for one peer before the queue is dropped (anti-entropy repairs), default 20 000. */
  maxQueue?: number;
  /** A link with more buffered bytes than this is not sent more pushes until it drains. Default 1 MiB. */
  highWaterBytes?: number;
  /**
   * An origin that changed here within this is not exchanged (its pushes may be in flight), ms.
   * Default 1000. Under continuous churn it is exchanged anyway every `maxDeferMs` (default 10 000).
   */
  settleMs?: number;
  maxDeferMs?: number;
}

/**
 * Registry replication inside a unit: pushes this node's own records to every peer as they change,
 * and runs digest anti-entropy (per origin: incarnation, live count, hash) with every peer, which
 * repairs whatever a push missed (link down, queue dropped, partition). Only the origin's own
 * complete set retires records of its older incarnations.
 */
export class Replicator {
  private readonly queues = new Map<string, Map<string, RegistryRecord>>();
  private readonly queuedAt = new Map<string, number>();
  private digests = new DigestIndex();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private round = 0;
  private readonly antiEntropyMs: number;
  private readonly maxQueue: number;
  private readonly highWaterBytes: number;
  private readonly settleMs: number;
  private readonly maxDeferMs: number;
  private readonly lastChange = new Map<string, number>();
  private readonly lastExchange = new Map<string, number>();
  /** Peers whose answer to our first digest on the current link has arrived (their records came before it). */
  private readonly exchanged = new Set<string>();
  /** Sessions (sockets peers dialled to us) that have sent a digest. */
  private readonly digestSessions = new WeakSet<object>();

  constructor(
    private readonly deps: {
      registry: Registry; log: Logger; metrics: PeerMetrics; links(): Iterable<ReplicaLink>; now?: () => number;
      /** Whether `origin` is in the unit's peer list now; records of other origins are taken as suspected (nothing keeps them fresh). */
      isMember?(origin: string): boolean;
    },
    options: ReplicatorOptions = {},
  ) {
    this.antiEntropyMs = options.antiEntropyMs ?? 2000;
    this.maxQueue = options.maxQueue ?? 20_000;
    this.highWaterBytes = options.highWaterBytes ?? 1024 * 1024;
    this.settleMs = options.settleMs ?? 1000;
    this.maxDeferMs = options.maxDeferMs ?? 10_000;
  }

  private get self(): string {
    return this.deps.registry.node;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  start(): void {
    this.unsubscribe = this.deps.registry.onChange((changed) => this.onChange(changed));
    this.digests = new DigestIndex(this.deps.registry.records());
    this.timer = setInterval(() => this.antiEntropy(), this.antiEntropyMs);
    this.timer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    clearInterval(this.timer);
    clearTimeout(this.drainTimer);
  }

  /** A link came up: start an exchange right away (a restarted origin re-announces its records). */
  linkUp(link: ReplicaLink): void {
    this.exchanged.delete(link.peer);
    this.sendDigest(link);
  }

  /** Whether a full digest exchange with this peer has completed on the current link. */
  exchangedWith(peer: string): boolean {
    return this.exchanged.has(peer);
  }

  linkDown(peer: string): void {
    this.exchanged.delete(peer);
    const q = this.queues.get(peer);
    if (q && q.size > 0) this.deps.metrics.pushDropped.inc(q.size);
    this.queues.delete(peer);
  }

  /** A request on a socket a peer dialled to us. */
  handleRequest(from: string, frame: PeerFrame, reply: (f: PeerFrame) => void, session: object): void {
    switch (frame.t) {
      case 'push': {
        const changed = this.merge(from, frame.records, 'push');
        if (frame.sentAt !== undefined && changed > 0) this.deps.metrics.peerVisible.observe(Math.max(0, this.now() - frame.sentAt) / 1000);
        return;
      }
      case 'digest': {
        const ours = this.currentDigests();
        const { weSend } = differingOrigins(ours, frame.origins);
        // The first digest of a session (the peer just connected, e.g. after a restart) gets every
        // differing origin at once: what was exchanged with its previous session says nothing of
        // what it holds now, and it holds its lookups until this answer.
        const first = !this.digestSessions.has(session);
        this.digestSessions.add(session);
        this.sendOrigins(this.settled(from, weSend, first), reply);
        reply({ t: 'digest', origins: [...ours.values()] });
        return;
      }
      case 'records':
        return this.records(from, frame, session);
    }
  }

  /** An answer on a link we dialled. */
  handleAnswer(link: ReplicaLink, frame: PeerFrame): void {
    switch (frame.t) {
      case 'records':
        return this.records(link.peer, frame, link);
      case 'digest': {
        // The peer sends the records we lack before its digest, in order on this socket.
        const first = !this.exchanged.has(link.peer);
        this.exchanged.add(link.peer);
        const { weSend } = differingOrigins(this.currentDigests(), frame.origins);
        this.sendOrigins(this.settled(link.peer, weSend, first), (f) => link.send(f));
        return;
      }
    }
  }

  /**
   * The differing origins worth sending now: a digest differs while pushes are in flight, and
   * sending a large origin's whole set every round would cost more than the pushes themselves.
   */
  private settled(peer: string, origins: readonly string[], all = false): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const origin of origins) {
      const key = `${peer}\u0000${origin}`;
      const quiet = now - (this.lastChange.get(origin) ?? 0) >= this.settleMs;
      if (!all && !quiet && now - (this.lastExchange.get(key) ?? 0) < this.maxDeferMs) continue;
      this.lastExchange.set(key, now);
      out.push(origin);
    }
    if (this.lastExchange.size > 100_000) this.lastExchange.clear();
    return out;
  }

  private onChange(changed: readonly RegistryRecord[]): void {
    const at = this.now();
    for (const r of changed) {
      this.digests.update(r);
      this.lastChange.set(r.origin, at);
    }
    const own = changed.filter((r) => r.origin === this.self);
    if (own.length === 0) return;
    for (const link of this.deps.links()) {
      if (!link.up) continue;
      let q = this.queues.get(link.peer);
      if (!q) this.queues.set(link.peer, (q = new Map()));
      for (const r of own) q.set(r.key, r);
      if (!this.queuedAt.has(link.peer)) this.queuedAt.set(link.peer, at);
      if (q.size > this.maxQueue) {
        // A peer that cannot keep up: stop queueing for it; the next digest exchange catches it up.
        this.deps.metrics.pushDropped.inc(q.size);
        q.clear();
      }
    }
    this.drain();
  }

  /** Sends queued pushes to every link below its high-water mark; retries shortly for the others. */
  private drain(): void {
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    let pending = false;
    for (const link of this.deps.links()) {
      const q = this.queues.get(link.peer);
      if (!q || q.size === 0) continue;
      if (!link.up) {
        this.linkDown(link.peer);
        continue;
      }
      const sentAt = this.queuedAt.get(link.peer) ?? this.now();
      while (q.size > 0 && link.bufferedAmount <= this.highWaterBytes) {
        const batch = chunkRecords(firstN(q.values(), MAX_RECORDS_PER_FRAME))[0] ?? [];
        for (const r of batch) q.delete(r.key);
        if (!link.send({ t: 'push', records: batch, sentAt })) break;
        this.deps.metrics.pushed.inc(batch.length);
      }
      if (q.size === 0) this.queuedAt.delete(link.peer);
      else pending = true;
    }
    if (pending) {
      this.drainTimer = setTimeout(() => this.drain(), 20);
      this.drainTimer.unref();
    }
  }

  private antiEntropy(): void {
    for (const link of this.deps.links()) if (link.up && link.bufferedAmount <= this.highWaterBytes) this.sendDigest(link);
  }

  private sendDigest(link: ReplicaLink): void {
    link.send({ t: 'digest', origins: [...this.currentDigests().values()] });
  }

  private currentDigests(): Map<string, OriginDigest> {
    return this.digests.all();
  }

  /** Sends our records of these origins; our own complete set is marked so the peer can retire older incarnations. */
  private sendOrigins(origins: readonly string[], send: (f: PeerFrame) => void): void {
    for (const origin of origins) {
      const records = this.deps.registry.recordsOf(origin);
      if (origin === this.self) {
        const round = ++this.round;
        const chunks = chunkRecords(records);
        if (chunks.length === 0) chunks.push([]);
        chunks.forEach((chunk, i) => send({ t: 'records', records: chunk, own: { round, last: i === chunks.length - 1, incarnation: this.deps.registry.incarnation } }));
      } else {
        for (const chunk of chunkRecords(records)) send({ t: 'records', records: chunk });
      }
    }
  }

  private readonly ownSets = new WeakMap<object, { round: number; keys: Set<string> }>();

  private records(from: string, frame: PeerFrameOf<'records'>, session: object): void {
    const changed = this.merge(from, frame.records, 'anti-entropy');
    if (changed > 0) this.deps.metrics.repairs.inc(changed);
    if (!frame.own) return;
    // The sender's complete own set, in order on one socket: collect keys until the last chunk.
    let set = this.ownSets.get(session);
    if (!set || set.round !== frame.own.round) this.ownSets.set(session, (set = { round: frame.own.round, keys: new Set() }));
    for (const r of frame.records) if (r.origin === from) set.keys.add(r.key);
    if (!frame.own.last) return;
    this.ownSets.delete(session);
    const stale = staleIncarnationTombstones(this.deps.registry.recordsOf(from), from, frame.own.incarnation, set.keys);
    if (stale.length > 0) {
      this.deps.log.info({ peer: from, incarnation: frame.own.incarnation, retired: stale.length }, 'retired records of an older incarnation of this peer');
      const n = this.deps.registry.mergeRemote(stale).length;
      if (n > 0) this.deps.metrics.repairs.inc(n);
    }
  }

  /** Validates and merges records from a peer; returns how many changed something here. */
  private merge(from: string, records: readonly RegistryRecord[], via: string): number {
    const { registry, log, metrics } = this.deps;
    const valid: RegistryRecord[] = [];
    let firstProblem: string | undefined;
    let refused = 0;
    for (const r of records) {
      // A copy of one of our own records goes to the registry too: it re-asserts ours over it.
      const problem = recordProblem(r, registry.unit);
      if (problem) {
        refused++;
        firstProblem ??= problem;
      } else {
        valid.push(r);
      }
    }
    if (refused > 0) {
      metrics.refused.inc(refused);
      log.warn({ peer: from, via, refused, reason: firstProblem }, 'refused records from peer');
    }
    if (valid.length === 0) return 0;
    // Before the merge, so that no lookup or watch ever shows them passing: a node that left the
    // peer list (e.g. one this agent never knew because it restarted after the node left) keeps
    // coming back through anti-entropy from peers that still hold its records.
    if (this.deps.isMember) {
      for (const origin of new Set(valid.map((r) => r.origin))) {
        if (origin !== registry.node && !this.deps.isMember(origin)) registry.setOriginSuspected(origin, true);
      }
    }
    return registry.mergeRemote(valid).length;
  }
}

function firstN<T>(items: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  for (const item of items) {
    if (out.length >= n) break;
    out.push(item);
  }
  return out;
}
