import { Type, type Static } from '@sinclair/typebox';
import { NameSchema, objectSchema } from './meta.js';
import { AppTemplateSchema } from './workload.js';

export const InstancePhaseSchema = Type.Union([
  Type.Literal('Pending'),
  Type.Literal('Running'),
  Type.Literal('Failed'),
  Type.Literal('Succeeded'),
]);
export type InstancePhase = Static<typeof InstancePhaseSchema>;

/**
 * One replica of an EdgeApp in one unit, placed on one node by the scheduler (like a Pod).
 * Written by the hub only; the agent of `spec.node` reports its status.
 */
export const InstanceSpecSchema = Type.Object(
  {
    app: NameSchema,
    unit: NameSchema,
    /** Empty while no ready node of the unit can take it. */
    node: Type.String({ maxLength: 253 }),
    index: Type.Integer({ minimum: 0 }),
    /** The app's template for this unit and node: overrides applied, `{{unit}}`/`{{node}}` substituted. */
    template: AppTemplateSchema,
    /** Hash of `template` (and of the configs it uses, when the app restarts on config change): the agent replaces the process or container when it changes. */
    templateHash: Type.String(),
    /** The app revision this instance runs (see AppRevision). */
    revision: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type InstanceSpec = Static<typeof InstanceSpecSchema>;

export const InstanceStatusSchema = Type.Object(
  {
    phase: InstancePhaseSchema,
    ready: Type.Boolean(),
    restarts: Type.Integer({ minimum: 0 }),
    node: Type.Optional(Type.String({ maxLength: 253 })),
    pid: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Container instances: the container's id. */
    containerId: Type.Optional(Type.String({ maxLength: 128 })),
    exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    signal: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
    startedAt: Type.Optional(Type.String({ maxLength: 64 })),
    /** The template hash of the process that runs (may lag spec.templateHash during a replacement). */
    templateHash: Type.Optional(Type.String({ maxLength: 128 })),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type InstanceStatus = Static<typeof InstanceStatusSchema>;

export const InstanceSchema = objectSchema('Instance', InstanceSpecSchema, InstanceStatusSchema);
export type Instance = Static<typeof InstanceSchema>;
