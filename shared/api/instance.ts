import { Type, type Static } from '@sinclair/typebox';
import { described, NameSchema, objectSchema } from './meta.js';
import { AppTemplateSchema } from './workload.js';

export const InstancePhaseSchema = Type.Union([
  Type.Literal('Pending'),
  Type.Literal('Running'),
  Type.Literal('Failed'),
  Type.Literal('Succeeded'),
]);
export type InstancePhase = Static<typeof InstancePhaseSchema>;

export const InstanceSpecSchema = Type.Object(
  {
    app: NameSchema,
    unit: NameSchema,
    node: Type.String({ maxLength: 253, description: 'Empty while no ready node of the unit can take it.' }),
    index: Type.Integer({ minimum: 0 }),
    template: described(AppTemplateSchema, 'The app\'s template for this unit and node: overrides applied, `{{unit}}`/`{{node}}` substituted.'),
    templateHash: Type.String({ description: 'Hash of `template` (and of the configs it uses, when the app restarts on config change): the agent replaces the process or container when it changes.' }),
    revision: Type.Optional(Type.Integer({ minimum: 1, description: 'The app revision this instance runs (see AppRevision).' })),
  },
  { additionalProperties: false, description: 'One replica of an EdgeApp in one unit, placed on one node by the scheduler (like a Pod). Written by the hub only; the agent of `spec.node` reports its status.' },
);
export type InstanceSpec = Static<typeof InstanceSpecSchema>;

export const InstanceStatusSchema = Type.Object(
  {
    phase: InstancePhaseSchema,
    ready: Type.Boolean(),
    restarts: Type.Integer({ minimum: 0 }),
    node: Type.Optional(Type.String({ maxLength: 253 })),
    pid: Type.Optional(Type.Integer({ minimum: 1 })),
    containerId: Type.Optional(Type.String({ maxLength: 128, description: 'Container instances: the container\'s id.' })),
    exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    signal: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
    startedAt: Type.Optional(Type.String({ maxLength: 64 })),
    templateHash: Type.Optional(Type.String({ maxLength: 128, description: 'The template hash of the process that runs (may lag spec.templateHash during a replacement).' })),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type InstanceStatus = Static<typeof InstanceStatusSchema>;

export const InstanceSchema = objectSchema('Instance', InstanceSpecSchema, InstanceStatusSchema);
export type Instance = Static<typeof InstanceSchema>;
