import { API_VERSION, type AnyObject, type AppRevision, type AppTemplate, type EdgeApp, type EdgeAppStatus, type EdgeConfig, type EdgeNode, type Instance, type InstanceSpec, type NodeUnit, type UnitAppStatus } from '../../shared/api/index.js';
import { deepEqual } from '../../shared/hash.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CacheEvent, ObjectCache } from '../cache/object-cache.js';
import { configRevisionOf } from '../configs/config-revision.js';
import { ControllerLoop } from '../controller-loop.js';
import type { HubMetrics } from '../metrics.js';
import { appSelectsUnit } from '../sessions/scope.js';
import type { Store } from '../store/store.js';
import { NodeUsage } from './placement.js';
import { planRevisions, revisionHash } from './revisions.js';
import type { ProgressMark } from './rollout-phase.js';
import { reconcileUnit } from './unit-reconcile.js';
import { unitNameWarnings } from './variants.js';
import { unitsSummary } from './units-summary.js';

export interface SchedulerOptions {
  /** Changes arriving within this window are handled in one pass, ms. Default 20. */
  debounceMs?: number;
}

export interface SchedulerDeps {
  store: Store;
  cache: ObjectCache;
  log: Logger;
  metrics: HubMetrics;
  /** ms since epoch; default Date.now (tests move time for progress deadlines). */
  now?: () => number;
  /**
   * Hash of the EdgeConfigs a template uses ('' when none), folded into the instances'
   * templateHash of apps with restartOnConfigChange. Wired by hub.ts (cloud-hub/configs).
   */
  configsHash?: (template: AppTemplate) => string;
}

/**
 * The hub's workload controller. One debounced pass over the cache: keeps the AppRevisions of every
 * EdgeApp, renders each selected unit's variant, places instances (fit, spread, stable: an instance
 * stays on its node while the node exists in the unit and is not Down), rolls template changes out
 * unit by unit (rollout-plan.ts), and writes EdgeApp status per unit.
 */
export class Scheduler {
  private readonly loop: ControllerLoop;
  private wake: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  /** How far each unit's rollout has got, per app and unit (for the progress deadline; a restart restarts the clock). */
  private readonly progress = new Map<string, ProgressMark>();

  constructor(private readonly deps: SchedulerDeps, options: SchedulerOptions = {}) {
    this.loop = new ControllerLoop('scheduler', () => this.pass(), deps.log, { debounceMs: options.debounceMs ?? 20 });
  }

  start(): void {
    this.unsubscribe = this.deps.cache.onChange((e) => { if (this.relevant(e)) this.loop.trigger(); });
    this.loop.trigger();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.wake);
    await this.loop.stop();
  }

  /** Resolves when no pass is pending or running (tests, shutdown). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Runs a pass soon (tests that move the clock). */
  poke(): void {
    this.loop.trigger();
  }

  private relevant(e: CacheEvent): boolean {
    if (e.type !== 'MODIFIED' || !e.oldObject) return e.object.kind !== 'AppRevision' || e.type === 'DELETED';
    const o = e.oldObject;
    const n = e.object;
    switch (n.kind) {
      case 'EdgeApp':
      case 'NodeUnit':
      case 'EdgeConfig':
        return !deepEqual(o.spec, n.spec) || !deepEqual(o.metadata.labels, n.metadata.labels) || (n.kind === 'EdgeConfig' && !deepEqual(o, n));
      case 'EdgeNode': {
        const os = (o as EdgeNode).status;
        const ns = (n as EdgeNode).status;
        return os?.phase !== ns?.phase || !deepEqual(os?.capacity, ns?.capacity) || !deepEqual(o.spec, n.spec) || !deepEqual(o.metadata.labels, n.metadata.labels);
      }
      case 'Instance': {
        const os = (o as Instance).status;
        const ns = (n as Instance).status;
        // restarts: an updated instance that restarted counts as available only later (rollout-available.ts).
        return os?.ready !== ns?.ready || os?.templateHash !== ns?.templateHash || os?.phase !== ns?.phase || os?.restarts !== ns?.restarts || !deepEqual(o.spec, n.spec);
      }
      default:
        return false;
    }
  }

  private async pass(): Promise<void> {
    this.deps.metrics.schedulerRuns.inc();
    const next = await this.reconcile();
    clearTimeout(this.wake);
    if (next !== undefined && !this.stopped) {
      // A progress deadline, or an instance counting as available after minReadySeconds: wake up for it even if nothing else changes.
      this.wake = setTimeout(() => this.loop.trigger(), Math.max(0, next - this.now()) + 50);
      this.wake.unref();
    }
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** One pass; returns the earliest time a unit needs a pass again though nothing changes, if any. */
  private async reconcile(): Promise<number | undefined> {
    const { cache } = this.deps;
    const units = new Map(cache.list('NodeUnit').map((u) => [u.metadata.name, u as NodeUnit]));
    const nodes = cache.list('EdgeNode') as EdgeNode[];
    const apps = (cache.list('EdgeApp') as EdgeApp[]).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const instances = cache.list('Instance') as Instance[];
    const revisions = cache.list('AppRevision') as AppRevision[];
    const usage = NodeUsage.of(instances);
    const owners = new Map(instances.map((i) => [i.metadata.name, i.spec.app]));
    const appNames = new Set(apps.map((a) => a.metadata.name));
    const byApp = groupBy(instances, (i) => i.spec.app);
    const nodesByUnit = groupBy(nodes, (n) => n.spec.unit);
    const revisionsByApp = groupBy(revisions, (r) => r.spec.app);
    const keep = new Set<string>();
    const progressSeen = new Set<string>();
    let wakeAt: number | undefined;

    for (const app of apps) {
      const name = app.metadata.name;
      const mine = byApp.get(name) ?? [];
      try {
        const mineByName = new Map(mine.map((i) => [i.metadata.name, i]));
        const mineByUnit = groupBy(mine, (i) => i.spec.unit);
        const problems: string[] = [];
        const revision = await this.syncRevisions(app, revisionsByApp.get(name) ?? [], new Set(mine.map((i) => i.spec.revision ?? 0)), problems);
        const configsHash = (t: AppTemplate) => (app.spec.restartOnConfigChange && this.deps.configsHash ? this.deps.configsHash(t) : '');
        const unitStatuses: UnitAppStatus[] = [];
        const selectedUnits: NodeUnit[] = [];
        const now = this.now();
        for (const [unitName, unit] of [...units].sort(([a], [b]) => a.localeCompare(b))) {
          if (!appSelectsUnit(app, unitName, unit)) continue;
          selectedUnits.push(unit);
          const key = `${name}\0${unitName}`;
          progressSeen.add(key);
          const r = reconcileUnit({
            app, unitName, unit, nodes: nodesByUnit.get(unitName) ?? [], instances: mineByUnit.get(unitName) ?? [],
            revision, configsHash, usage, ownerOf: (n) => owners.get(n), now, prevProgress: this.progress.get(key), revisions: revisionsByApp.get(name) ?? [],
          });
          if (r.progress) this.progress.set(key, r.progress);
          if (r.wakeAt !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, r.wakeAt);
          for (const n of r.keep) keep.add(n);
          for (const [iname, spec] of r.specs) {
            const problem = await this.writeInstance(mineByName.get(iname), iname, spec);
            if (problem) problems.push(problem);
            else owners.set(iname, name);
          }
          problems.push(...r.problems);
          unitStatuses.push(r.status);
        }
        const warnings = unitNameWarnings(app, (u) => units.has(u));
        const message = [...new Set(problems)].slice(0, 5).join('; ').slice(0, 4096);
        const status: EdgeAppStatus = {
          observedGeneration: app.metadata.generation ?? 0, revision, templateHash: revisionHash(app),
          observedConfigRevision: configRevisionOf(app, selectedUnits, (n) => cache.get('EdgeConfig', n) as EdgeConfig | undefined),
          units: unitStatuses,
          ...unitsSummary(unitStatuses),
          ...(message ? { message } : {}), ...(warnings.length ? { warnings } : {}),
        };
        if (!deepEqual(app.status, status)) await this.ignoreGone(this.deps.store.updateStatus('EdgeApp', name, status));
      } catch (err) {
        // One app the store refuses (e.g. stored before today's validation rules) must not stop
        // the others, and its instances stay as they are: nothing is deleted for it this pass.
        if (!isOutpostError(err, 'INVALID')) throw err;
        this.deps.log.error({ err, app: name }, 'cannot reconcile this app; its instances are left as they are');
        for (const i of mine) keep.add(i.metadata.name);
        for (const u of units.keys()) progressSeen.add(`${name}\0${u}`);
      }
    }
    for (const i of instances) {
      if (!keep.has(i.metadata.name)) await this.ignoreGone(this.deps.store.delete('Instance', i.metadata.name));
    }
    for (const r of revisions) {
      if (!appNames.has(r.spec.app)) await this.ignoreGone(this.deps.store.delete('AppRevision', r.metadata.name));
    }
    for (const k of this.progress.keys()) if (!progressSeen.has(k)) this.progress.delete(k);
    return wakeAt;
  }

  /** Creates, renumbers and prunes the app's AppRevisions; returns the current revision number. */
  private async syncRevisions(app: EdgeApp, existing: AppRevision[], inUse: Set<number>, problems: string[]): Promise<number> {
    const plan = planRevisions(app, existing, inUse);
    for (const r of plan.create) {
      try {
        await this.deps.store.create(r as AnyObject);
        this.deps.log.info({ app: app.metadata.name, revision: r.spec.revision }, 'app revision created');
      } catch (err) {
        if (isOutpostError(err, 'ALREADY_EXISTS')) { this.loop.requeue(); continue; }
        if (isOutpostError(err, 'INVALID')) { problems.push(`cannot keep revision ${r.metadata.name.slice(0, 80)}: ${err.message}`); continue; }
        throw err;
      }
    }
    for (const n of plan.delete) await this.ignoreGone(this.deps.store.delete('AppRevision', n));
    return plan.current;
  }

  /** Creates or updates one instance; returns a problem to show in the app's status, if any. */
  private async writeInstance(existing: Instance | undefined, name: string, spec: InstanceSpec): Promise<string | undefined> {
    if (existing && deepEqual(existing.spec, spec)) return undefined;
    try {
      if (!existing) {
        const obj: AnyObject = { apiVersion: API_VERSION, kind: 'Instance', metadata: { name }, spec };
        await this.ignoreGone(this.deps.store.create(obj));
        this.deps.log.info({ instance: name, node: spec.node || null, revision: spec.revision }, 'instance created');
      } else {
        const updated = await this.ignoreGone(this.deps.store.update({ ...existing, spec }, { resourceVersion: existing.metadata.resourceVersion ?? '' }));
        if (updated && existing.spec.node !== spec.node) {
          this.deps.log.info({ instance: name, from: existing.spec.node, to: spec.node }, 'instance placed');
          // The status came from the old node: it says nothing about the new one.
          await this.ignoreGone(this.deps.store.updateStatus('Instance', name, { phase: 'Pending', ready: false, restarts: 0 }));
        } else if (updated && existing.spec.templateHash !== spec.templateHash) {
          this.deps.log.info({ instance: name, revision: spec.revision, templateHash: spec.templateHash }, 'instance updated');
        }
      }
      return undefined;
    } catch (err) {
      if (isOutpostError(err, 'INVALID')) return `cannot write instance ${name.slice(0, 80)}: ${err.message}`;
      throw err;
    }
  }

  /** Races with deletes and concurrent writes are expected; the next pass sees the new state. */
  private async ignoreGone<T>(p: Promise<T>): Promise<T | undefined> {
    try {
      return await p;
    } catch (err) {
      if (isOutpostError(err, 'NOT_FOUND') || isOutpostError(err, 'CONFLICT')) {
        this.loop.requeue();
        return undefined;
      }
      throw err;
    }
  }
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
