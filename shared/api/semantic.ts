import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FieldError } from '../errors.js';
import type { EdgeApp } from './edge-app.js';
import type { AnyObject } from './meta.js';
import { applyOverride, PatchApplyError } from './render.js';
import { AppTemplateSchema, type AppTemplate, type Probe } from './workload.js';

// Compiled on first use (issue 7: processes that never check a template do not hold it).
let compiledTemplateCheck: ReturnType<typeof TypeCompiler.Compile<typeof AppTemplateSchema>> | undefined;
const templateCheck = () => (compiledTemplateCheck ??= TypeCompiler.Compile(AppTemplateSchema));

/**
 * Rules a schema cannot say: one runtime per template, one target per probe, JSON patches that
 * apply and leave a valid template, unique config references. Field paths as in schema errors.
 */
export function semanticProblems(obj: AnyObject): FieldError[] {
  // A unit's name is stamped on its nodes as the value of label outpost.dev/unit (63 at most).
  if (obj.kind === 'NodeUnit' && obj.metadata.name.length > 63) return [{ path: '/metadata/name', message: 'a NodeUnit name is at most 63 characters (it becomes a label value)' }];
  // Revisions are named <app>-<number>.
  if (obj.kind === 'EdgeApp' && obj.metadata.name.length > 240) return [{ path: '/metadata/name', message: 'an EdgeApp name is at most 240 characters (its revisions are named <app>-<n>)' }];
  if (obj.kind === 'EdgeApp') return appProblems(obj as EdgeApp);
  if (obj.kind === 'Device') {
    const spec = obj.spec as { node?: string; unit?: string };
    if ((spec.node === undefined) === (spec.unit === undefined)) return [{ path: '/spec', message: 'set exactly one of node and unit (the device\'s MQTT home)' }];
  }
  if (obj.kind === 'Instance') return templateProblems((obj as { spec: { template: AppTemplate } }).spec.template, '/spec/template');
  return [];
}

function appProblems(app: EdgeApp): FieldError[] {
  const out = templateProblems(app.spec.template, '/spec/template');
  (app.spec.overrides ?? []).forEach((o, i) => {
    const path = `/spec/overrides/${i}`;
    if (!o.units.names?.length && !Object.keys(o.units.selector?.matchLabels ?? {}).length) out.push({ path: `${path}/units`, message: 'an override must target units by names or selector' });
    if (o.image !== undefined && !app.spec.template.containers) out.push({ path: `${path}/image`, message: 'image applies to containers; this template runs processes' });
    let patched: AppTemplate;
    try {
      patched = applyOverride(app.spec.template, o, i);
    } catch (err) {
      if (err instanceof PatchApplyError) out.push({ path: err.path, message: `JSON patch cannot apply to the template: ${err.message}` });
      else out.push({ path, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (!templateCheck().Check(patched)) {
      const e = templateCheck().Errors(patched).First();
      out.push({ path: `${path}/patches`, message: `the patched template is invalid at ${e?.path ?? '/'}: ${e?.message ?? 'schema mismatch'}` });
    } else if (o.patches?.length) {
      const before = new Set(templateProblems(app.spec.template, '').map((p) => `${p.path} ${p.message}`));
      for (const p of templateProblems(patched, '')) if (!before.has(`${p.path} ${p.message}`)) out.push({ path: `${path}/patches`, message: `the patched template: ${p.path || '/'}: ${p.message}` });
    }
  });
  return out;
}

function templateProblems(t: AppTemplate, base: string): FieldError[] {
  const out: FieldError[] = [];
  const hasP = (t.processes?.length ?? 0) > 0;
  const hasC = (t.containers?.length ?? 0) > 0;
  if (hasP === hasC) out.push({ path: base, message: 'set exactly one of processes or containers' });
  const lists: Array<[string, Array<{ readinessProbe?: Probe; livenessProbe?: Probe; envFrom?: { config: string }[]; configMounts?: { config: string }[] }> | undefined]> = [
    ['processes', t.processes],
    ['containers', t.containers],
  ];
  for (const [key, list] of lists) {
    (list ?? []).forEach((w, i) => {
      for (const probe of ['readinessProbe', 'livenessProbe'] as const) {
        const p = w[probe];
        if (!p) continue;
        const targets = [p.httpGet, p.tcpSocket, p.exec].filter((x) => x !== undefined).length;
        if (targets !== 1) out.push({ path: `${base}/${key}/${i}/${probe}`, message: targets === 0 ? 'a probe needs a target: httpGet, tcpSocket or exec' : 'a probe takes exactly one of httpGet, tcpSocket, exec' });
      }
      const mounts = (w.configMounts ?? []).map((m) => m.config);
      const dup = mounts.find((m, j) => mounts.indexOf(m) !== j);
      if (dup) out.push({ path: `${base}/${key}/${i}/configMounts`, message: `config ${dup} is mounted twice` });
    });
  }
  return out;
}
