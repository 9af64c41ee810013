import type { EdgeNode, NodeUnit } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import { deepEqual } from '../../shared/hash.js';
import type { Logger } from '../../shared/logger.js';
import type { CacheEvent, ObjectCache } from '../cache/object-cache.js';
import { ControllerLoop } from '../controller-loop.js';
import type { Store } from '../store/store.js';
import { resolveMembership } from './membership.js';
import { stampNode } from './stamping.js';
import { unitStatus } from './unit-status.js';

/** How long a pass that only recounts unit members may wait for more changes, ms. */
const COUNTS_DELAY_MS = 500;

/**
 * Keeps node units and their members in step: each EdgeNode's unit (spec.nodes, spec.selector,
 * else the join unit), the labels and taints its unit stamps on it, and NodeUnit status (node
 * counts by phase, conditions). A node whose unit changes gets a new session scope (the session
 * manager closes its session when spec.unit changes; the agent reconnects at once).
 */
export class UnitController {
  private readonly loop: ControllerLoop;
  private unsubscribe: (() => void) | undefined;
  /**
   * Whether the next pass must resolve and stamp every node; false when only counts moved since
   * the last full pass (then members are grouped by their stamped spec.unit, and the lost claims
   * of the last full pass still hold: they change only with labels, specs or units).
   */
  private urgentSeq = 1;
  private fullPassDoneSeq = 0;
  private lastLostClaims = new Map<string, string[]>();

  constructor(private readonly deps: { store: Store; cache: ObjectCache; log: Logger; now?: () => number }) {
    this.loop = new ControllerLoop('unit controller', () => this.reconcile(), deps.log);
  }

  start(): void {
    this.unsubscribe = this.deps.cache.onChange((e) => {
      const urgency = this.relevant(e);
      if (urgency === 'now') this.urgentSeq++;
      if (urgency) this.loop.trigger(urgency === 'counts' ? COUNTS_DELAY_MS : undefined);
    });
    this.loop.trigger();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.loop.stop();
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  /**
   * Whether a change needs a pass: 'now' when a node may need (re)stamping or a unit changed,
   * 'counts' when only the unit status counts move (a node joined already stamped, changed phase,
   * or was deleted): those wait up to COUNTS_DELAY_MS so that 100 joins or 10 000 reconnects a
   * second cost a few passes over every node, not one each (issue 7, churn profile).
   */
  private relevant(e: CacheEvent): 'now' | 'counts' | false {
    if (e.object.kind === 'NodeUnit') {
      // Its status is this controller's own write: a pass for it would find nothing to do, and a
      // full one walks every node (every recount used to trigger one).
      const o = e.oldObject;
      if (e.type === 'MODIFIED' && o && deepEqual(o.spec, e.object.spec) && deepEqual(o.metadata.labels, e.object.metadata.labels) && deepEqual(o.metadata.annotations, e.object.metadata.annotations)) return false;
      return 'now';
    }
    if (e.object.kind !== 'EdgeNode') return false;
    const o = e.oldObject as EdgeNode | undefined;
    const n = e.object as EdgeNode;
    if (e.type === 'DELETED') return 'counts';
    if (e.type === 'ADDED' || !o) return this.stampedAsItShouldBe(n) ? 'counts' : 'now';
    if (!deepEqual(o.metadata.labels, n.metadata.labels) || !deepEqual(o.spec, n.spec)) return 'now';
    return o.status?.phase !== n.status?.phase ? 'counts' : false;
  }

  /** The per-node part of a pass, for one node: does it already carry its unit's stamp? */
  private stampedAsItShouldBe(node: EdgeNode): boolean {
    const units = this.deps.cache.list('NodeUnit') as NodeUnit[];
    const claimants = units.filter((u) => (u.spec?.nodes?.length ?? 0) > 0 || Object.keys(u.spec?.selector?.matchLabels ?? {}).length > 0);
    const m = resolveMembership(node, claimants);
    if (m.alsoClaimedBy.length > 0) return false;
    const stamped = stampNode(node, m.unit, units.find((u) => u.metadata.name === m.unit));
    return deepEqual(stamped.metadata, node.metadata) && deepEqual(stamped.spec, node.spec);
  }

  private async reconcile(): Promise<void> {
    const { cache } = this.deps;
    const units = cache.list('NodeUnit') as NodeUnit[];
    const nodes = cache.list('EdgeNode') as EdgeNode[];
    if (this.fullPassDoneSeq === this.urgentSeq) {
      // Only phases, joins of stamped nodes or deletes since the last full pass: recount.
      const members = new Map<string, EdgeNode[]>();
      for (const node of nodes) {
        const list = members.get(node.spec.unit);
        if (list) list.push(node);
        else members.set(node.spec.unit, [node]);
      }
      await this.writeUnitStatuses(units, members, this.lastLostClaims);
      return;
    }
    const seq = this.urgentSeq;
    let complete = true; // every node stamped as it should be (else the next pass is a full one too)
    const { store } = this.deps;
    const unitByName = new Map(units.map((u) => [u.metadata.name, u]));
    const lostClaims = new Map<string, string[]>();
    const members = new Map<string, EdgeNode[]>();
    // Only units that list nodes or select by labels can claim a node: resolving against those
    // alone gives the same answer and keeps a pass O(nodes), not O(nodes x units) (issue 7).
    const claimants = units.filter((u) => (u.spec?.nodes?.length ?? 0) > 0 || Object.keys(u.spec?.selector?.matchLabels ?? {}).length > 0);
    const append = <T>(map: Map<string, T[]>, key: string, value: T) => {
      const list = map.get(key);
      if (list) list.push(value);
      else map.set(key, [value]);
    };
    for (const node of nodes) {
      const m = resolveMembership(node, claimants);
      for (const u of m.alsoClaimedBy) append(lostClaims, u, node.metadata.name);
      const stamped = stampNode(node, m.unit, unitByName.get(m.unit));
      append(members, m.unit, stamped);
      if (deepEqual(stamped.metadata, node.metadata) && deepEqual(stamped.spec, node.spec)) continue;
      if (stamped.spec.unit !== node.spec.unit) this.deps.log.info({ node: node.metadata.name, from: node.spec.unit, to: stamped.spec.unit, by: m.by }, 'node changes unit');
      try {
        if (!(await this.tolerateRaces(store.update(stamped, { resourceVersion: node.metadata.resourceVersion ?? '' })))) complete = false;
      } catch (err) {
        // One node that cannot be stamped (a unit stored before today's rules) must not stop the others.
        if (!isOutpostError(err, 'INVALID')) throw err;
        complete = false;
        this.deps.log.error({ err, node: node.metadata.name, unit: m.unit }, 'cannot update the node for its unit; skipping it');
      }
    }
    this.lastLostClaims = lostClaims;
    await this.writeUnitStatuses(units, members, lostClaims);
    if (complete) this.fullPassDoneSeq = seq;
  }

  private async writeUnitStatuses(units: NodeUnit[], members: Map<string, EdgeNode[]>, lostClaims: Map<string, string[]>): Promise<void> {
    const { store } = this.deps;
    const now = new Date(this.deps.now?.() ?? Date.now()).toISOString();
    const changed: { name: string; status: unknown }[] = [];
    for (const unit of units) {
      const status = unitStatus(unit, members.get(unit.metadata.name) ?? [], lostClaims.get(unit.metadata.name) ?? [], unit.status, now);
      if (!deepEqual(unit.status, status)) changed.push({ name: unit.metadata.name, status });
    }
    if (store.updateStatuses && changed.length > 1) {
      // One commit for every unit whose counts moved (a reconnect storm moves all of them).
      const results = await store.updateStatuses('NodeUnit', changed);
      for (const r of results) if (r instanceof Error) await this.tolerateRaces(Promise.reject(r));
    } else {
      for (const c of changed) await this.tolerateRaces(store.updateStatus('NodeUnit', c.name, c.status));
    }
  }

  /** A node deleted or written concurrently (status reports): the next pass sees the new state. */
  private async tolerateRaces<T>(p: Promise<T>): Promise<boolean> {
    try {
      await p;
      return true;
    } catch (err) {
      if (isOutpostError(err, 'NOT_FOUND') || isOutpostError(err, 'CONFLICT')) {
        this.loop.requeue();
        return false;
      }
      throw err;
    }
  }
}
