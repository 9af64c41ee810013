import { Type, type Static } from '@sinclair/typebox';
import { MatchLabelsSelectorSchema, NameSchema, objectSchema } from './meta.js';
import { AppServiceSchema, AppTemplateSchema, ResourcesSchema } from './workload.js';

export { RestartPolicySchema, type AppTemplate, type RestartPolicy } from './workload.js';

export const UnitSelectionSchema = Type.Object(
  {
    names: Type.Optional(Type.Array(NameSchema, { maxItems: 10000 })),
    selector: Type.Optional(MatchLabelsSelectorSchema),
  },
  { additionalProperties: false },
);
export type UnitSelection = Static<typeof UnitSelectionSchema>;

/** One RFC 6902 operation on the template (paths relative to spec.template). */
export const JsonPatchOpSchema = Type.Object(
  {
    op: Type.Union([Type.Literal('add'), Type.Literal('remove'), Type.Literal('replace'), Type.Literal('move'), Type.Literal('copy'), Type.Literal('test')]),
    path: Type.String({ maxLength: 1024 }),
    from: Type.Optional(Type.String({ maxLength: 1024 })),
    value: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
export type JsonPatchOp = Static<typeof JsonPatchOpSchema>;

/**
 * A per-unit variant. Overrides apply in order to the units they target (last wins): replicas,
 * then image/command/args/env/resources on the template's process or container, then patches.
 * `{{unit}}` and `{{node}}` in string values are substituted after all overrides.
 */
export const OverrideSchema = Type.Object(
  {
    units: UnitSelectionSchema,
    replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    command: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { maxItems: 1024 })),
    /** Merged into the env (a key set here wins). */
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 }), Type.String({ maxLength: 65536 }), { additionalProperties: false })),
    resources: Type.Optional(ResourcesSchema),
    patches: Type.Optional(Type.Array(JsonPatchOpSchema, { maxItems: 256 })),
  },
  { additionalProperties: false },
);
export type Override = Static<typeof OverrideSchema>;

/** A whole number or a percentage of the unit's replicas ("25%"). */
const IntOrPercent = Type.Union([Type.Integer({ minimum: 0, maximum: 1000 }), Type.String({ pattern: '^[0-9]{1,3}%$' })]);

export const RolloutSchema = Type.Object(
  {
    /** Instances of a unit that may be not ready because of the update, at once. Default 1. */
    maxUnavailable: Type.Optional(IntOrPercent),
    /** Extra instances a unit may run above its replicas during an update. Default 0. */
    maxSurge: Type.Optional(IntOrPercent),
    /** A unit whose update makes no progress for this long is marked Failed and stops. Default 600. */
    progressDeadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
    /**
     * An updated instance counts as available once ready for this long. Default 0: ready is enough,
     * unless it restarted since its update (then at least 30 s up).
     */
    minReadySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    /** No further update steps while true (`outpost rollout pause|resume`). */
    paused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type Rollout = Static<typeof RolloutSchema>;

export const EdgeAppSpecSchema = Type.Object(
  {
    template: AppTemplateSchema,
    /** Units that run the app: by name, by NodeUnit labels, or both (union). */
    units: UnitSelectionSchema,
    /** Instances in every selected unit, spread over its ready nodes. Default 1. */
    replicasPerUnit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    overrides: Type.Optional(Type.Array(OverrideSchema, { maxItems: 256 })),
    rollout: Type.Optional(RolloutSchema),
    /** A change of an EdgeConfig the template uses rolls the instances (as a template change does). Default false. */
    restartOnConfigChange: Type.Optional(Type.Boolean()),
    /** Old revisions kept for `outpost rollout undo`. Default 10. */
    revisionHistoryLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    /** Registers every instance in its node's local service registry (issue 6); health follows the readiness probe. */
    service: Type.Optional(AppServiceSchema),
  },
  { additionalProperties: false },
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
    /** Instances running the app's current revision. */
    updated: Type.Integer(),
    /** Instances ready and running some revision. */
    available: Type.Optional(Type.Integer()),
    /** The revision the unit runs completely (the last one it finished rolling out). */
    revision: Type.Optional(Type.Integer()),
    /** The revision the unit is rolling to. */
    updateRevision: Type.Optional(Type.Integer()),
    rollout: Type.Optional(UnitRolloutPhaseSchema),
    /** When the unit last made progress in its rollout (for the deadline). */
    progressAt: Type.Optional(Type.String()),
    /** Hash of what the unit rolls to (its rendered template and configs): a change within one revision is a new rollout. */
    targetHash: Type.Optional(Type.String({ maxLength: 64 })),
    message: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
);
export type UnitAppStatus = Static<typeof UnitAppStatusSchema>;

export const EdgeAppStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer()),
    /** The current revision number (its template and overrides are kept as AppRevision `<app>-<n>`). */
    revision: Type.Optional(Type.Integer()),
    templateHash: Type.Optional(Type.String()),
    /**
     * The newest resourceVersion among the EdgeConfigs the app uses, as the hub saw them when it
     * wrote this status: `rollout status` waits until it covers a config change just made.
     */
    observedConfigRevision: Type.Optional(Type.Integer({ minimum: 0 })),
    units: Type.Optional(Type.Array(UnitAppStatusSchema)),
    /** Ready/desired instances over all selected units, e.g. "3/4" (a kubectl get column). */
    ready: Type.Optional(Type.String({ maxLength: 32 })),
    /** Ready/desired instances per unit, e.g. "site-a 2/2, site-b 1/2"; past ~1000 characters the rest is counted ("+N more"). */
    unitsSummary: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Why some instances could not be created (name collisions, invalid names, no node fits). */
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    /** Accepted but suspicious: an override that targets no existing unit, a config that does not exist. */
    warnings: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 32 })),
  },
  { additionalProperties: false },
);
export type EdgeAppStatus = Static<typeof EdgeAppStatusSchema>;

export const EdgeAppSchema = objectSchema('EdgeApp', EdgeAppSpecSchema, EdgeAppStatusSchema);
export type EdgeApp = Static<typeof EdgeAppSchema>;
