import { API_VERSION, type AnyObject, type EdgeApp, type EdgeAppStatus, type EdgeNode, type Instance, type InstanceSpec, type NodeUnit, type UnitAppStatus } from '../../shared/api/index.js';
import { deepEqual, shortHash } from '../../shared/hash.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CacheEvent, ObjectCache } from '../cache/object-cache.js';
import type { HubMetrics } from '../metrics.js';
import { appSelectsUnit } from '../sessions/scope.js';
import type { Store } from '../store/store.js';
import { bump, instanceName, pickNode } from './placement.js';

export interface SchedulerOptions {
  /** Changes arriving within this window are handled in one pass, ms. Default 20. */
  debounceMs?: number;
}

/**
 * Places `replicasPerUnit` instances of every EdgeApp on the Ready nodes of each selected unit,
 * spread over nodes, and keeps placement stable: an instance stays on its node while that node
 * exists, also while it is Disconnected (offline is a normal state, never a reason to move work).
 * It also writes EdgeApp and NodeUnit status from what the instances and nodes report.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly deps: { store: Store; cache: ObjectCache; log: Logger; metrics: HubMetrics }, private readonly options: SchedulerOptions = {}) {}

  start(): void {
    this.unsubscribe = this.deps.cache.onChange((e) => { if (this.relevant(e)) this.trigger(); });
    this.trigger();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.running;
  }

  /** Resolves when no pass is pending or running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running || this.timer) await (this.running ?? new Promise((r) => setTimeout(r, this.options.debounceMs ?? 20)));
  }

  private relevant(e: CacheEvent): boolean {
    switch (e.object.kind) {
      case 'EdgeApp':
      case 'NodeUnit':
        return !(e.type === 'MODIFIED' && e.oldObject && deepEqual(e.oldObject.spec, e.object.spec) && deepEqual(e.oldObject.metadata.labels, e.object.metadata.labels));
      case 'EdgeNode':
        return e.type !== 'MODIFIED' || (e.oldObject as EdgeNode | undefined)?.status?.phase !== (e.object as EdgeNode).status?.phase;
      case 'Instance': {
        const o = (e.oldObject as Instance | undefined)?.status;
        const n = (e.object as Instance).status;
        return e.type !== 'MODIFIED' || o?.ready !== n?.ready || o?.templateHash !== n?.templateHash || o?.phase !== n?.phase;
      }
      default:
        return false;
    }
  }

  private trigger(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (this.again) { this.again = false; this.trigger(); }
      });
    }, this.options.debounceMs ?? 20);
  }

  private async pass(): Promise<void> {
    this.deps.metrics.schedulerRuns.inc();
    try {
      await this.reconcile();
    } catch (err) {
      // A store failure: retry, but slowly (a tight loop would only burn the CPU it needs).
      this.deps.log.error({ err }, 'scheduler pass failed; retrying in 1 s');
      setTimeout(() => this.trigger(), 1000).unref();
    }
  }

  private async reconcile(): Promise<void> {
    const { cache } = this.deps;
    const units = new Map(cache.list('NodeUnit').map((u) => [u.metadata.name, u as NodeUnit]));
    const nodes = cache.list('EdgeNode') as EdgeNode[];
    const apps = cache.list('EdgeApp') as EdgeApp[];
    const instances = cache.list('Instance') as Instance[];
    const nodeByName = new Map(nodes.map((n) => [n.metadata.name, n]));
    const totalLoad = new Map<string, number>();
    for (const i of instances) if (i.spec.node) bump(totalLoad, i.spec.node);

    const wanted = new Set<string>();
    const instancesByName = new Map(instances.map((i) => [i.metadata.name, i]));
    for (const app of apps) {
      const hash = shortHash(app.spec.template);
      const replicas = app.spec.replicasPerUnit ?? 1;
      const appLoad = new Map<string, number>();
      const mine = new Map(instances.filter((i) => i.spec.app === app.metadata.name).map((i) => [i.metadata.name, i]));
      for (const i of mine.values()) if (i.spec.node) bump(appLoad, i.spec.node);
      const unitStatuses: UnitAppStatus[] = [];
      const problems: string[] = [];
      for (const [unitName, unit] of [...units].sort(([a], [b]) => a.localeCompare(b))) {
        if (!appSelectsUnit(app, unitName, unit)) continue;
        const ready = nodes.filter((n) => n.spec.unit === unitName && n.status?.phase === 'Ready');
        const counts: UnitAppStatus = { unit: unitName, desired: replicas, scheduled: 0, ready: 0, updated: 0 };
        for (let index = 0; index < replicas; index++) {
          const name = instanceName(app.metadata.name, unitName, index);
          wanted.add(name);
          const taken = instancesByName.get(name);
          if (taken && taken.spec.app !== app.metadata.name) {
            // `${app}-${unit}-${i}` can collide (app "web" in unit "eu-x" vs app "web-eu" in unit "x").
            problems.push(`instance name ${name} is taken by app ${taken.spec.app}; rename this app or the unit`);
            continue;
          }
          const existing = mine.get(name);
          let node = existing?.spec.node ?? '';
          const current = node ? nodeByName.get(node) : undefined;
          // An instance moves only when its node is gone, or Down by its unit's policy and another
          // node of the unit is Ready to take it. Disconnected alone never moves work.
          if (node && (current?.spec.unit !== unitName || (current.status?.phase === 'Down' && ready.length > 0))) {
            bump(appLoad, node, -1);
            bump(totalLoad, node, -1);
            node = '';
          }
          if (!node) {
            node = pickNode(ready, appLoad, totalLoad) ?? '';
            if (node) { bump(appLoad, node); bump(totalLoad, node); }
          }
          const spec: InstanceSpec = { app: app.metadata.name, unit: unitName, node, index, template: app.spec.template, templateHash: hash };
          const problem = await this.writeInstance(existing, name, spec);
          if (problem) { problems.push(problem); continue; }
          if (node) counts.scheduled++;
          const st = existing?.status;
          if (existing && existing.spec.node === node && st?.templateHash === hash) {
            counts.updated++;
            if (st.ready) counts.ready++;
          }
        }
        unitStatuses.push(counts);
      }
      const status: EdgeAppStatus = { observedGeneration: app.metadata.generation ?? 0, templateHash: hash, units: unitStatuses, ...(problems.length ? { message: problems.slice(0, 5).join('; ').slice(0, 4000) } : {}) };
      if (!deepEqual(app.status, status)) await this.ignoreGone(this.deps.store.updateStatus('EdgeApp', app.metadata.name, status));
    }
    for (const i of instances) {
      if (!wanted.has(i.metadata.name)) await this.ignoreGone(this.deps.store.delete('Instance', i.metadata.name));
    }
    for (const [unitName, unit] of units) {
      const members = nodes.filter((n) => n.spec.unit === unitName);
      const count = (phase: string) => members.filter((n) => n.status?.phase === phase).length;
      const status = { nodes: { total: members.length, ready: count('Ready'), disconnected: count('Disconnected'), down: count('Down') } };
      if (!deepEqual(unit.status, status)) await this.ignoreGone(this.deps.store.updateStatus('NodeUnit', unitName, status));
    }
  }

  /** Creates or updates one instance; returns a problem to show in the app's status, if any. */
  private async writeInstance(existing: Instance | undefined, name: string, spec: InstanceSpec): Promise<string | undefined> {
    if (existing && deepEqual(existing.spec, spec)) return undefined;
    try {
      if (!existing) {
        const obj: AnyObject = { apiVersion: API_VERSION, kind: 'Instance', metadata: { name }, spec };
        await this.ignoreGone(this.deps.store.create(obj));
        this.deps.log.info({ instance: name, node: spec.node || null }, 'instance created');
      } else {
        const updated = await this.ignoreGone(this.deps.store.update({ ...existing, spec }, { resourceVersion: existing.metadata.resourceVersion ?? '' }));
        if (updated && existing.spec.node !== spec.node) {
          this.deps.log.info({ instance: name, from: existing.spec.node, to: spec.node }, 'instance placed');
          // The status came from the old node: it says nothing about the new one.
          await this.ignoreGone(this.deps.store.updateStatus('Instance', name, { phase: 'Pending', ready: false, restarts: 0 }));
        }
      }
      return undefined;
    } catch (err) {
      if (isOutpostError(err, 'INVALID')) return `cannot create instance ${name.slice(0, 80)}: ${err.message}`;
      throw err;
    }
  }

  /** Races with deletes and concurrent writes are expected; the next pass sees the new state. */
  private async ignoreGone<T>(p: Promise<T>): Promise<T | undefined> {
    try {
      return await p;
    } catch (err) {
      if (isOutpostError(err, 'NOT_FOUND') || isOutpostError(err, 'CONFLICT')) {
        this.again = true;
        return undefined;
      }
      throw err;
    }
  }
}
