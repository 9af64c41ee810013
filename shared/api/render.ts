import jsonPatch from 'fast-json-patch';
import { matchesLabels } from '../labels.js';
import type { EdgeAppSpec, JsonPatchOp, Override, UnitSelection } from './edge-app.js';
import type { AppTemplate } from './workload.js';

/** Whether a unit selection (by names, by NodeUnit labels, or both: union) takes this unit; unitLabels undefined: the unit does not exist. */
export function selectsUnit(sel: UnitSelection, unitName: string, unitLabels: Record<string, string> | undefined): boolean {
  if (sel.names?.includes(unitName)) return true;
  // As in Kubernetes, a present but empty selector selects every unit.
  if (sel.selector) return unitLabels !== undefined && matchesLabels(unitLabels, sel.selector.matchLabels);
  return false;
}

/** What one unit runs of an app: its replicas and template after the overrides, `{{unit}}` substituted. */
export interface UnitVariant {
  replicas: number;
  template: AppTemplate;
  /** Indexes of the overrides that applied, in order. */
  applied: number[];
}

/**
 * The unit's variant of an app: every override targeting the unit applies in order (last wins),
 * then `{{unit}}` is substituted in every string value. Throws a PatchError-carrying Error when a
 * JSON patch cannot apply to this unit's template (the caller shows it in the app's status).
 */
export function renderForUnit(spec: Pick<EdgeAppSpec, 'template' | 'replicasPerUnit' | 'overrides' | 'service'>, unitName: string, unitLabels: Record<string, string> | undefined): UnitVariant {
  // spec.service travels in the template, so it reaches the agent with each instance and overrides can patch /service.
  let template = structuredClone(spec.service ? { ...spec.template, service: spec.service } : spec.template);
  let replicas = spec.replicasPerUnit ?? 1;
  const applied: number[] = [];
  (spec.overrides ?? []).forEach((o, i) => {
    if (!selectsUnit(o.units, unitName, unitLabels)) return;
    if (o.replicas !== undefined) replicas = o.replicas;
    template = applyOverride(template, o, i);
    applied.push(i);
  });
  return { replicas, template: substitute(template, { unit: unitName }), applied };
}

/** One override's fields on the template's process or container, then its patches. */
export function applyOverride(template: AppTemplate, o: Override, index: number): AppTemplate {
  const t = structuredClone(template);
  const w = t.containers?.[0] ?? t.processes?.[0];
  if (w) {
    if (o.image !== undefined && t.containers?.[0]) t.containers[0].image = o.image;
    if (o.command !== undefined) {
      if (t.processes?.[0]) t.processes[0].command = o.command;
      else if (t.containers?.[0]) t.containers[0].command = [o.command];
    }
    if (o.args !== undefined) w.args = [...o.args];
    if (o.env !== undefined) w.env = { ...w.env, ...o.env };
    if (o.resources !== undefined) w.resources = { requests: { ...w.resources?.requests, ...o.resources.requests }, limits: { ...w.resources?.limits, ...o.resources.limits } };
  }
  return o.patches?.length ? applyPatches(t, o.patches, index) : t;
}

/** RFC 6902 on a copy; an operation that cannot apply throws naming the override and operation. */
function applyPatches(t: AppTemplate, patches: JsonPatchOp[], overrideIndex: number): AppTemplate {
  try {
    return jsonPatch.applyPatch(t, patches as jsonPatch.Operation[], true, false).newDocument;
  } catch (err) {
    const e = err as { index?: number; name?: string; message?: string };
    const at = e.index ?? 0;
    const op = patches[at];
    throw new PatchApplyError(`/spec/overrides/${overrideIndex}/patches/${at}`, `${op?.op ?? ''} ${op?.path ?? ''}: ${(e.message ?? String(err)).split('\n')[0]}`);
  }
}

export class PatchApplyError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** `{{unit}}` / `{{node}}` in every string value (keys untouched); unknown placeholders stay. */
export function substitute<T>(value: T, vars: { unit?: string; node?: string }): T {
  const replace = (s: string) => s.replace(/\{\{\s*(unit|node)\s*\}\}/g, (m, k: 'unit' | 'node') => vars[k] ?? m);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return replace(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}
