import { Type, type Static } from '@sinclair/typebox';
import { described, MatchLabelsSelectorSchema, NameSchema, objectSchema } from './meta.js';
import { AppServiceSchema, AppTemplateSchema, ResourcesSchema } from './workload.js';

export { RestartPolicySchema, type AppTemplate, type RestartPolicy } from './workload.js';

export const UnitSelectionSchema = Type.Object(
  {
    names: Type.Optional(Type.Array(NameSchema, { maxItems: 10000, description: 'NodeUnits by name.' })),
    selector: Type.Optional(described(MatchLabelsSelectorSchema, 'NodeUnits whose labels match.')),
  },
  { additionalProperties: false },
);
export type UnitSelection = Static<typeof UnitSelectionSchema>;

export const JsonPatchOpSchema = Type.Object(
  {
    op: Type.Union([Type.Literal('add'), Type.Literal('remove'), Type.Literal('replace'), Type.Literal('move'), Type.Literal('copy'), Type.Literal('test')]),
    path: Type.String({ maxLength: 1024 }),
    from: Type.Optional(Type.String({ maxLength: 1024 })),
    value: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false, description: 'One RFC 6902 operation on the template (paths relative to spec.template).' },
);
export type JsonPatchOp = Static<typeof JsonPatchOpSchema>;

export const OverrideSchema = Type.Object(
  {
    units: described(UnitSelectionSchema, 'The units this override applies to.'),
    replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'Instances in each of these units (instead of replicasPerUnit).' })),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'The container image in these units.' })),
    command: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'The process command in these units.' })),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { maxItems: 1024, description: 'Replaces the args.' })),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 }), Type.String({ maxLength: 65536 }), { additionalProperties: false, description: 'Merged into the env (a key set here wins).' })),
    resources: Type.Optional(ResourcesSchema),
    patches: Type.Optional(Type.Array(JsonPatchOpSchema, { maxItems: 256, description: 'RFC 6902 operations on the template, applied last.' })),
  },
  { additionalProperties: false, description: 'A per-unit variant. Overrides apply in order to the units they target (last wins): replicas, then image/command/args/env/resources on the template\'s process or container, then patches. `{{unit}}` and `{{node}}` in string values are substituted after all overrides.' },
);
export type Override = Static<typeof OverrideSchema>;

const IntOrPercent = Type.Union([Type.Integer({ minimum: 0, maximum: 1000 }), Type.String({ pattern: '^[0-9]{1,3}%$' })], { description: 'A whole number or a percentage of the unit\'s replicas ("25%").' });

export const RolloutSchema = Type.Object(
  {
    maxUnavailable: Type.Optional(described(IntOrPercent, 'Instances of a unit that may be not ready because of the update, at once. Default 1.')),
    maxSurge: Type.Optional(described(IntOrPercent, 'Extra instances a unit may run above its replicas during an update. Default 0.')),
    progressDeadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, description: 'A unit whose update makes no progress for this long is marked Failed and stops. Default 600.' })),
    minReadySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'An updated instance counts as available once ready for this long. Default 0: ready is enough, unless it restarted since its update (then at least 30 s up).' })),
    paused: Type.Optional(Type.Boolean({ description: 'No further update steps while true (`outpost rollout pause|resume`).' })),
  },
  { additionalProperties: false },
);
export type Rollout = Static<typeof RolloutSchema>;

export const EdgeAppSpecSchema = Type.Object(
  {
    template: described(AppTemplateSchema, 'What every instance runs: one process (processes) or one container (containers), with its env, configs, resources, probes and restart policy.'),
    units: described(UnitSelectionSchema, 'Units that run the app: by name, by NodeUnit labels, or both (union).'),
    replicasPerUnit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'Instances in every selected unit, spread over its ready nodes. Default 1.' })),
    overrides: Type.Optional(Type.Array(OverrideSchema, { maxItems: 256, description: 'Per-unit variants, applied in order to the units they target (last wins).' })),
    rollout: Type.Optional(described(RolloutSchema, 'How a new revision replaces the instances of each unit.')),
    restartOnConfigChange: Type.Optional(Type.Boolean({ description: 'A change of an EdgeConfig the template uses rolls the instances (as a template change does). Default false.' })),
    revisionHistoryLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'Old revisions kept for `outpost rollout undo`. Default 10.' })),
    service: Type.Optional(described(AppServiceSchema, 'Registers every instance in its node\'s local service registry (issue 6); health follows the readiness probe.')),
  },
  { additionalProperties: false, description: 'A workload for many units: the template runs replicasPerUnit times in every selected unit, with per-unit overrides and a rolling update per unit.' },
);
export type EdgeAppSpec = Static<typeof EdgeAppSpecSchema>;

export const UnitRolloutPhaseSchema = Type.Union([
  Type.Literal('Complete'),
  Type.Literal('Progressing'),
  Type.Literal('Paused'),
  /** The unit has no Ready node: it completes when its nodes come back. */
  Type.Literal('Waiting'),
  /** No progress within progressDeadlineSeconds, or the unit's variant cannot be rendered: no further steps until the template changes. */
  Type.Literal('Failed'),
]);
export type UnitRolloutPhase = Static<typeof UnitRolloutPhaseSchema>;

export const UnitAppStatusSchema = Type.Object(
  {
    unit: Type.String(),
    desired: Type.Integer(),
    scheduled: Type.Integer(),
    ready: Type.Integer(),
    updated: Type.Integer({ description: 'Instances running the app\'s current revision.' }),
    available: Type.Optional(Type.Integer({ description: 'Instances ready and running some revision.' })),
    revision: Type.Optional(Type.Integer({ description: 'The revision the unit runs completely (the last one it finished rolling out).' })),
    updateRevision: Type.Optional(Type.Integer({ description: 'The revision the unit is rolling to.' })),
    rollout: Type.Optional(UnitRolloutPhaseSchema),
    progressAt: Type.Optional(Type.String({ description: 'When the unit last made progress in its rollout (for the deadline).' })),
    targetHash: Type.Optional(Type.String({ maxLength: 64, description: 'Hash of what the unit rolls to (its rendered template and configs): a change within one revision is a new rollout.' })),
    message: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
);
export type UnitAppStatus = Static<typeof UnitAppStatusSchema>;

export const EdgeAppStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer()),
    revision: Type.Optional(Type.Integer({ description: 'The current revision number (its template and overrides are kept as AppRevision `<app>-<n>`).' })),
    templateHash: Type.Optional(Type.String()),
    observedConfigRevision: Type.Optional(Type.Integer({ minimum: 0, description: 'The newest resourceVersion among the EdgeConfigs the app uses, as the hub saw them when it wrote this status: `rollout status` waits until it covers a config change just made.' })),
    units: Type.Optional(Type.Array(UnitAppStatusSchema)),
    ready: Type.Optional(Type.String({ maxLength: 32, description: 'Ready/desired instances over all selected units, e.g. "3/4" (a kubectl get column).' })),
    unitsSummary: Type.Optional(Type.String({ maxLength: 1024, description: 'Ready/desired instances per unit, e.g. "site-a 2/2, site-b 1/2"; past ~1000 characters the rest is counted ("+N more").' })),
    message: Type.Optional(Type.String({ maxLength: 4096, description: 'Why some instances could not be created (name collisions, invalid names, no node fits).' })),
    warnings: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 32, description: 'Accepted but suspicious: an override that targets no existing unit, a config that does not exist.' })),
  },
  { additionalProperties: false },
);
export type EdgeAppStatus = Static<typeof EdgeAppStatusSchema>;

export const EdgeAppSchema = objectSchema('EdgeApp', EdgeAppSpecSchema, EdgeAppStatusSchema);
export type EdgeApp = Static<typeof EdgeAppSchema>;
