import { type AppTemplate, type EdgeApp, type NodeUnit } from '../../shared/api/index.js';
import { PatchApplyError, renderForUnit, substitute } from '../../shared/api/render.js';
import { AppTemplateSchema } from '../../shared/api/workload.js';
import { shortHash } from '../../shared/hash.js';
import { TypeCompiler } from '@sinclair/typebox/compiler';

const templateCheck = TypeCompiler.Compile(AppTemplateSchema);

/** One unit's variant of an app, or why it cannot be rendered (the unit's instances are left alone). */
export type UnitVariant = { ok: true; replicas: number; template: AppTemplate } | { ok: false; message: string };

export function unitVariant(app: EdgeApp, unitName: string, unit: NodeUnit | undefined): UnitVariant {
  try {
    const v = renderForUnit(app.spec, unitName, unit?.metadata.labels);
    // Each override is checked at apply time on its own; several together may still break the schema.
    if (!templateCheck.Check(v.template)) {
      const e = templateCheck.Errors(v.template).First();
      return { ok: false, message: `the template rendered for unit ${unitName} is invalid at ${e?.path || '/'}: ${e?.message ?? 'schema mismatch'}` };
    }
    return { ok: true, replicas: v.replicas, template: v.template };
  } catch (err) {
    if (err instanceof PatchApplyError) return { ok: false, message: `override patch ${err.path} does not apply to unit ${unitName}: ${err.message}` };
    throw err;
  }
}

/** What an instance on `node` runs: the unit's template with `{{node}}` substituted (kept as is while unplaced). */
export function instanceTemplate(unitTemplate: AppTemplate, node: string): AppTemplate {
  return node ? substitute(unitTemplate, { node }) : unitTemplate;
}

/**
 * The instance's templateHash: its template, plus the hash of the EdgeConfigs it uses when the app
 * restarts on config change (so a config change replaces the process as a template change does).
 */
export function instanceHash(template: AppTemplate, configsHash: string): string {
  return configsHash ? shortHash({ template, configs: configsHash }) : shortHash(template);
}

/** Warnings for names that select no existing unit: accepted (units come and go), but shown. */
export function unitNameWarnings(app: EdgeApp, unitExists: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const n of app.spec.units.names ?? []) if (!unitExists(n)) out.push(`spec.units.names: unit "${n}" does not exist`);
  (app.spec.overrides ?? []).forEach((o, i) => {
    for (const n of o.units.names ?? []) if (!unitExists(n)) out.push(`spec.overrides[${i}] targets unit "${n}", which does not exist`);
  });
  return out.slice(0, 32);
}
