import type { Logger } from '../../../shared/logger.js';
import type { MemberFact, MemberStatus, PeerFrame, PeerFrameOf } from './peer-frames.js';

/**
 * SWIM incarnations: the registry incarnation (one per agent start) times this, plus the number
 * of refutations within the run. A restarted node therefore outranks every fact about its
 * previous run, and a refutation outranks the suspicion it answers.
 */
export const INC_PER_START = 1_000_000;

export interface FailureDetectorOptions {
  /** One probe per period, ms. Default 1000. */
  periodMs?: number;
  /** Wait for a direct ack before asking others to probe, ms. Default 500. */
  probeTimeoutMs?: number;
  /** Peers asked to probe indirectly. Default 3. */
  indirectProbes?: number;
  /** A suspect that does not refute within this becomes dead, ms. Default 4000. */
  suspicionMs?: number;
}

export interface FailureDetectorDeps {
  self: string;
  /** This run's registry incarnation. */
  incarnation: number;
  /** Sends a request on our link to `to`; false when that link is down. */
  send(to: string, frame: PeerFrame): boolean;
  /** A member's status changed (after the table was updated). */
  onStatus(node: string, status: MemberStatus, previous: MemberStatus): void;
  /** A suspicion was lifted by the suspect answering in the same run (a false suspicion). */
  onRefuted(node: string): void;
  log: Logger;
  random?: () => number;
}

interface Member {
  status: MemberStatus;
  inc: number;
  suspectTimer?: NodeJS.Timeout;
}

interface Probe {
  target: string;
  acked: boolean;
  timers: NodeJS.Timeout[];
}

/**
 * SWIM-style failure detection (Das, Gupta, Motivala 2002; memberlist's suspicion and refutation
 * rules): each period one member is probed directly; without an ack within the probe timeout, k
 * other members probe it on our behalf; without any ack by the end of the period it is suspected.
 * A suspect becomes dead after the suspicion timeout unless it refutes by raising its incarnation.
 * Membership facts travel on every ping and ack (the whole table: units are small).
 */
export class FailureDetector {
  private readonly members = new Map<string, Member>();
  private order: string[] = [];
  private next = 0;
  private seq = 0;
  private selfInc: number;
  private readonly probes = new Map<number, Probe>();
  private readonly relays = new Map<number, { reply: (f: PeerFrame) => void; seq: number; timer: NodeJS.Timeout }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly periodMs: number;
  private readonly probeTimeoutMs: number;
  private readonly indirectProbes: number;
  private readonly suspicionMs: number;
  private readonly random: () => number;

  constructor(private readonly deps: FailureDetectorDeps, options: FailureDetectorOptions = {}) {
    this.periodMs = options.periodMs ?? 1000;
    this.probeTimeoutMs = Math.min(options.probeTimeoutMs ?? 500, this.periodMs);
    this.indirectProbes = options.indirectProbes ?? 3;
    this.suspicionMs = options.suspicionMs ?? 4000;
    this.random = deps.random ?? Math.random;
    this.selfInc = deps.incarnation * INC_PER_START;
  }

  get incarnation(): number {
    return this.selfInc;
  }

  start(): void {
    this.timer = setInterval(() => this.probeNext(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    for (const p of this.probes.values()) p.timers.forEach(clearTimeout);
    for (const r of this.relays.values()) clearTimeout(r.timer);
    for (const m of this.members.values()) clearTimeout(m.suspectTimer);
    this.probes.clear();
    this.relays.clear();
  }

  /** The unit's peers (from the hub's peer list). New members start alive; removed ones are forgotten (the caller decides what their records become). */
  setMembers(nodes: readonly string[]): void {
    const want = new Set(nodes.filter((n) => n !== this.deps.self));
    for (const [node, m] of this.members) {
      if (!want.has(node)) {
        clearTimeout(m.suspectTimer);
        this.members.delete(node);
      }
    }
    for (const node of want) if (!this.members.has(node)) this.members.set(node, { status: 'alive', inc: 0 });
    this.order = this.order.filter((n) => want.has(n));
  }

  status(node: string): MemberStatus | undefined {
    return this.members.get(node)?.status;
  }

  /** Every member and what this node believes of it. */
  table(): MemberFact[] {
    return [...this.members].map(([node, m]) => ({ node, status: m.status, inc: m.inc }));
  }

  /** A handshake told us the member's current run: a newer run is alive whatever was said before. */
  learnIncarnation(node: string, registryIncarnation: number): void {
    this.apply({ node, status: 'alive', inc: registryIncarnation * INC_PER_START });
  }

  /** Our link to a member dropped: probe it now rather than at its turn. */
  probeSoon(node: string): void {
    if (this.members.has(node) && ![...this.probes.values()].some((p) => p.target === node)) this.probe(node);
  }

  handlePing(frame: PeerFrameOf<'ping'>, reply: (f: PeerFrame) => void): void {
    this.merge(frame.members);
    reply({ t: 'ack', seq: frame.seq, node: this.deps.self, inc: this.selfInc, members: this.facts() });
  }

  handlePingReq(frame: PeerFrameOf<'ping-req'>, reply: (f: PeerFrame) => void): void {
    this.merge(frame.members);
    if (!this.members.has(frame.target)) return;
    const seq = ++this.seq;
    if (!this.deps.send(frame.target, { t: 'ping', seq, members: this.facts() })) return;
    const timer = setTimeout(() => this.relays.delete(seq), this.probeTimeoutMs);
    timer.unref();
    this.relays.set(seq, { reply, seq: frame.seq, timer });
  }

  handleAck(frame: PeerFrameOf<'ack'>): void {
    this.merge(frame.members);
    const relay = this.relays.get(frame.seq);
    if (relay) {
      clearTimeout(relay.timer);
      this.relays.delete(frame.seq);
      relay.reply({ t: 'ack', seq: relay.seq, node: frame.node, inc: frame.inc, members: this.facts() });
      return;
    }
    const probe = this.probes.get(frame.seq);
    if (!probe || probe.target !== frame.node) return;
    probe.acked = true;
    // An answer in the same run proves the member alive at the incarnation it states.
    this.apply({ node: frame.node, status: 'alive', inc: frame.inc }, { direct: true });
  }

  private probeNext(): void {
    if (this.members.size === 0) return;
    if (this.next >= this.order.length) {
      this.order = shuffle([...this.members.keys()], this.random);
      this.next = 0;
    }
    const target = this.order[this.next++];
    if (target !== undefined) this.probe(target);
  }

  private probe(target: string): void {
    const seq = ++this.seq;
    const probe: Probe = { target, acked: false, timers: [] };
    this.probes.set(seq, probe);
    const sent = this.deps.send(target, { t: 'ping', seq, members: this.facts() });
    const indirect = () => {
      if (probe.acked) return;
      const helpers = shuffle([...this.members].filter(([n, m]) => n !== target && m.status === 'alive').map(([n]) => n), this.random).slice(0, this.indirectProbes);
      for (const h of helpers) this.deps.send(h, { t: 'ping-req', seq, target, members: this.facts() });
    };
    if (sent) probe.timers.push(setTimeout(indirect, this.probeTimeoutMs));
    else indirect();
    const due = performance.now() + this.periodMs;
    probe.timers.push(setTimeout(() => {
      this.probes.delete(seq);
      if (probe.acked) return;
      // Our own event loop stalled (Lifeguard's local health): the missing ack says nothing about
      // the target, so this probe is inconclusive rather than a suspicion.
      if (performance.now() - due > this.probeTimeoutMs) {
        this.deps.log.debug({ peer: target, lateMs: Math.round(performance.now() - due) }, 'probe inconclusive: this agent was too busy to hear the answer');
        return;
      }
      const m = this.members.get(target);
      if (m?.status === 'alive') this.apply({ node: target, status: 'suspect', inc: m.inc });
    }, this.periodMs));
    for (const t of probe.timers) t.unref();
  }

  private facts(): MemberFact[] {
    return [{ node: this.deps.self, status: 'alive', inc: this.selfInc }, ...this.table()];
  }

  private merge(facts: readonly MemberFact[]): void {
    for (const f of facts) this.apply(f);
  }

  /** memberlist's precedence: alive needs a higher incarnation; suspect and dead win at an equal one. */
  private apply(fact: MemberFact, opts: { direct?: boolean } = {}): void {
    if (fact.node === this.deps.self) {
      if (fact.status !== 'alive' && fact.inc >= this.selfInc) {
        this.selfInc = fact.inc + 1;
        this.deps.log.info({ said: fact.status, inc: this.selfInc }, 'refuting a suspicion about this node');
      }
      return;
    }
    const m = this.members.get(fact.node);
    if (!m) return;
    const previous = m.status;
    const previousRun = Math.floor(m.inc / INC_PER_START);
    let take: boolean;
    switch (fact.status) {
      case 'alive':
        // A direct answer at the member's current incarnation clears our own suspicion of it.
        take = fact.inc > m.inc || (opts.direct === true && fact.inc === m.inc && m.status !== 'alive');
        break;
      case 'suspect':
        take = (m.status === 'alive' && fact.inc >= m.inc) || (m.status === 'suspect' && fact.inc > m.inc);
        break;
      case 'dead':
        take = (m.status !== 'dead' && fact.inc >= m.inc) || fact.inc > m.inc;
        break;
    }
    if (!take) return;
    m.inc = fact.inc;
    m.status = fact.status;
    clearTimeout(m.suspectTimer);
    m.suspectTimer = undefined;
    if (fact.status === 'suspect') {
      const inc = fact.inc;
      m.suspectTimer = setTimeout(() => {
        if (m.status === 'suspect' && m.inc === inc && this.members.get(fact.node) === m) this.apply({ node: fact.node, status: 'dead', inc });
      }, this.suspicionMs);
      m.suspectTimer.unref();
    }
    if (previous === fact.status) return;
    this.deps.log.info({ peer: fact.node, status: fact.status, previous, inc: fact.inc }, 'peer status changed');
    if (fact.status === 'alive' && previous === 'suspect' && Math.floor(fact.inc / INC_PER_START) === previousRun) this.deps.onRefuted(fact.node);
    this.deps.onStatus(fact.node, fact.status, previous);
  }
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
