import { API_VERSION, type EdgeApp, type NodeUnit } from '../shared/api/index.js';
import { API, type HubClient } from './api.js';
import { MARKER_SCRIPT } from './markers.js';
import { INSTANCE_RUN_ENV } from './procs.js';
import type { Rng } from './rng.js';

/** Unit labels that app selectors use: flipping a unit's ring moves apps in or out of it. */
export type Ring = 'even' | 'odd';

export interface UnitModel {
  name: string;
  ring: Ring;
  /** Bumped by every unit change (spec.description). */
  rev: number;
}

/** What the harness has applied of one EdgeApp. */
export interface AppModel {
  name: string;
  /** Units by name (may be empty when `ring` selects). */
  names: string[];
  /** Units by label ring=<value>, if set. */
  ring: Ring | undefined;
  replicas: number;
  /** Template generation: the GEN env var; a new value is a template change (every process restarts). */
  gen: number;
  /** Annotation counter: a metadata-only change that must restart nothing. */
  note: number;
}

export type WorkloadOp =
  | { kind: 'create-app'; app: AppModel }
  | { kind: 'update-template'; app: AppModel }
  | { kind: 'scale'; app: AppModel }
  | { kind: 'retarget'; app: AppModel }
  | { kind: 'annotate'; app: AppModel }
  | { kind: 'delete-app'; name: string }
  | { kind: 'change-unit'; unit: UnitModel };

export type WorkloadOpKind = WorkloadOp['kind'];

export interface TimedOp {
  /** ms after the chaos phase began. */
  at: number;
  op: WorkloadOp;
}

export interface WorkloadPlan {
  units: UnitModel[];
  /** Applied (and waited for) before the chaos phase. */
  initial: WorkloadOp[];
  timeline: TimedOp[];
}

export interface WorkloadPlanOptions {
  durationMs: number;
  units: number;
  /** Most apps alive at once. Default 5. */
  maxApps?: number;
  /** Pool of app names; deleted names are reused, so instances are recreated under old names. */
  appNames?: number;
}

/**
 * The desired-state changes of a run, decided up front from the seed (so the same seed applies
 * the same changes in the same order): app creations (by unit name or by unit label), template
 * changes, replica changes, re-targeting, metadata-only changes, deletions and unit relabels.
 * Replica counts stay small: every instance is a real process on this machine.
 */
export function planWorkload(rng: Rng, options: WorkloadPlanOptions): WorkloadPlan {
  const units: UnitModel[] = Array.from({ length: options.units }, (_, i) => ({ name: `unit-${i}`, ring: i % 2 === 0 ? 'even' : 'odd', rev: 0 }));
  const initialUnits = units.map((u) => ({ ...u }));
  const unitNames = units.map((u) => u.name);
  const maxApps = options.maxApps ?? 5;
  const pool = Array.from({ length: options.appNames ?? 7 }, (_, i) => `svc-${i}`);
  const apps = new Map<string, AppModel>();
  let gen = 0;

  const replicas = () => rng.weighted([[0, 1], [1, 4], [2, 3], [3, 1]] as const);
  const target = (): Pick<AppModel, 'names' | 'ring'> => {
    if (rng.chance(0.3)) return { names: rng.chance(0.5) ? [rng.pick(unitNames)] : [], ring: rng.pick(['even', 'odd'] as const) };
    const n = rng.int(1, Math.min(2, unitNames.length));
    const chosen = new Set<string>();
    while (chosen.size < n) chosen.add(rng.pick(unitNames));
    return { names: [...chosen].sort(), ring: undefined };
  };
  const snapshot = (a: AppModel): AppModel => ({ ...a, names: [...a.names] });

  const create = (): WorkloadOp | undefined => {
    const free = pool.filter((n) => !apps.has(n));
    if (free.length === 0 || apps.size >= maxApps) return undefined;
    const app: AppModel = { name: rng.pick(free), ...target(), replicas: Math.max(1, replicas()), gen: ++gen, note: 0 };
    apps.set(app.name, app);
    return { kind: 'create-app', app: snapshot(app) };
  };

  const initial: WorkloadOp[] = [];
  for (let i = 0; i < Math.min(3, maxApps); i++) {
    const op = create();
    if (op) initial.push(op);
  }

  const timeline: TimedOp[] = [];
  for (let t = rng.int(300, 1200); t < options.durationMs - 1500; t += rng.int(600, 2200)) {
    const existing = [...apps.values()].sort((a, b) => a.name.localeCompare(b.name));
    const kind = rng.weighted<WorkloadOpKind>([
      ['create-app', apps.size < maxApps ? 2 : 0],
      ['update-template', existing.length ? 3 : 0],
      ['scale', existing.length ? 2 : 0],
      ['retarget', existing.length ? 1 : 0],
      ['annotate', existing.length ? 1 : 0],
      ['delete-app', existing.length > 1 ? 1.2 : 0],
      ['change-unit', 0.6],
    ]);
    let op: WorkloadOp | undefined;
    switch (kind) {
      case 'create-app':
        op = create();
        break;
      case 'update-template': {
        const a = rng.pick(existing);
        a.gen = ++gen;
        op = { kind, app: snapshot(a) };
        break;
      }
      case 'scale': {
        const a = rng.pick(existing);
        let r = replicas();
        if (r === a.replicas) r = (r + 1) % 4;
        a.replicas = r;
        op = { kind, app: snapshot(a) };
        break;
      }
      case 'retarget': {
        const a = rng.pick(existing);
        Object.assign(a, target());
        op = { kind, app: snapshot(a) };
        break;
      }
      case 'annotate': {
        const a = rng.pick(existing);
        a.note++;
        op = { kind, app: snapshot(a) };
        break;
      }
      case 'delete-app': {
        const a = rng.pick(existing);
        apps.delete(a.name);
        op = { kind, name: a.name };
        break;
      }
      case 'change-unit': {
        const u = rng.pick(units);
        if (rng.chance(0.6)) u.ring = u.ring === 'even' ? 'odd' : 'even';
        u.rev++;
        op = { kind, unit: { ...u } };
        break;
      }
    }
    if (op) timeline.push({ at: t, op });
  }
  return { units: initialUnits, initial, timeline };
}

export interface WorkloadContext {
  runId: string;
  markerDir: string;
}

export function unitObject(u: UnitModel): NodeUnit {
  return {
    apiVersion: API_VERSION,
    kind: 'NodeUnit',
    metadata: { name: u.name, labels: { ring: u.ring } },
    spec: { description: `chaos unit ${u.name}, rev ${u.rev}` },
  };
}

export function appObject(a: AppModel, ctx: WorkloadContext): EdgeApp {
  return {
    apiVersion: API_VERSION,
    kind: 'EdgeApp',
    metadata: { name: a.name, labels: { chaos: 'yes' }, annotations: { 'chaos.outpost.dev/note': String(a.note) } },
    spec: {
      units: { names: [...a.names], ...(a.ring ? { selector: { matchLabels: { ring: a.ring } } } : {}) },
      replicasPerUnit: a.replicas,
      template: {
        processes: [{ command: 'sh', args: ['-c', MARKER_SCRIPT], env: { GEN: genTag(a.gen), [INSTANCE_RUN_ENV]: ctx.runId, MARKER_DIR: ctx.markerDir } }],
        restartPolicy: 'Always',
        terminationGracePeriodSeconds: 1,
      },
    },
  };
}

export function genTag(gen: number): string {
  return `g${gen}`;
}

/** A short text naming an op, for logs and the report. */
export function describeOp(op: WorkloadOp): string {
  switch (op.kind) {
    case 'delete-app':
      return `delete-app ${op.name}`;
    case 'change-unit':
      return `change-unit ${op.unit.name} ring=${op.unit.ring} rev=${op.unit.rev}`;
    default: {
      const a = op.app;
      const units = [...(a.names.length ? [`names=${a.names.join('+')}`] : []), ...(a.ring ? [`ring=${a.ring}`] : [])].join(',');
      return `${op.kind} ${a.name} ${units} replicas=${a.replicas} gen=${genTag(a.gen)} note=${a.note}`;
    }
  }
}

/**
 * Applies one op through the API, retrying while the hub is down or paused: an op counts once
 * the hub acknowledged it. Every op is idempotent (PUT of a whole object, DELETE that accepts 404),
 * so a retry after a lost answer changes nothing.
 */
export async function applyOp(api: HubClient, op: WorkloadOp, ctx: WorkloadContext, deadlineMs: number): Promise<void> {
  switch (op.kind) {
    case 'delete-app':
      await api.retry('DELETE', `${API}/edgeapps/${op.name}`, undefined, { deadlineMs, accept: (s) => (s === 404 ? {} : undefined) });
      return;
    case 'change-unit':
      await api.retry('PUT', `${API}/nodeunits/${op.unit.name}`, unitObject(op.unit), { deadlineMs });
      return;
    default:
      await api.retry('PUT', `${API}/edgeapps/${op.app.name}`, appObject(op.app, ctx), { deadlineMs });
  }
}
