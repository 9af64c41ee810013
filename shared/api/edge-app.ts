import { Type, type Static } from '@sinclair/typebox';
import { MatchLabelsSelectorSchema, NameSchema, objectSchema } from './meta.js';

export const RestartPolicySchema = Type.Union([Type.Literal('Always'), Type.Literal('OnFailure'), Type.Literal('Never')]);
export type RestartPolicy = Static<typeof RestartPolicySchema>;

/** What runs for each instance: a process started by the agent's process runtime. */
export const ProcessTemplateSchema = Type.Object(
  {
    command: Type.String({ minLength: 1, maxLength: 4096 }),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { maxItems: 1024 })),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 }), Type.String({ maxLength: 65536 }), { additionalProperties: false })),
    workingDir: Type.Optional(Type.String({ maxLength: 4096 })),
    /** Default Always. */
    restartPolicy: Type.Optional(RestartPolicySchema),
    /** Seconds between SIGTERM and SIGKILL when an instance is stopped. Default 10. */
    terminationGracePeriodSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
  },
  { additionalProperties: false },
);
export type ProcessTemplate = Static<typeof ProcessTemplateSchema>;

export const UnitSelectionSchema = Type.Object(
  {
    names: Type.Optional(Type.Array(NameSchema, { maxItems: 10000 })),
    selector: Type.Optional(MatchLabelsSelectorSchema),
  },
  { additionalProperties: false },
);

export const EdgeAppSpecSchema = Type.Object(
  {
    template: ProcessTemplateSchema,
    /** Units that run the app: by name, by NodeUnit labels, or both (union). */
    units: UnitSelectionSchema,
    /** Instances in every selected unit, spread over its ready nodes. Default 1. */
    replicasPerUnit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  },
  { additionalProperties: false },
);
export type EdgeAppSpec = Static<typeof EdgeAppSpecSchema>;

export const UnitAppStatusSchema = Type.Object(
  {
    unit: Type.String(),
    desired: Type.Integer(),
    scheduled: Type.Integer(),
    ready: Type.Integer(),
    updated: Type.Integer(),
  },
  { additionalProperties: false },
);
export type UnitAppStatus = Static<typeof UnitAppStatusSchema>;

export const EdgeAppStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer()),
    templateHash: Type.Optional(Type.String()),
    units: Type.Optional(Type.Array(UnitAppStatusSchema)),
    /** Why some instances could not be created (name collisions, invalid names). */
    message: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type EdgeAppStatus = Static<typeof EdgeAppStatusSchema>;

export const EdgeAppSchema = objectSchema('EdgeApp', EdgeAppSpecSchema, EdgeAppStatusSchema);
export type EdgeApp = Static<typeof EdgeAppSchema>;
