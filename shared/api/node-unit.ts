import { Type, type Static } from '@sinclair/typebox';
import { LabelsSchema, objectSchema } from './meta.js';

/** A site: the nodes that joined with a token of this unit are its members. */
export const DurationSchema = Type.String({ pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$', maxLength: 32, description: 'a duration such as 30s, 10m, 24h, 7d' });

export const AutonomySchema = Type.Object(
  {
    /**
     * How long a node of this unit may stay Disconnected before it is declared Down and its
     * instances move to other nodes of the unit. null or absent: never (the default). Offline
     * alone is never a reason to move work unless the operator chose so here.
     */
    rescheduleAfter: Type.Optional(Type.Union([DurationSchema, Type.Null()])),
  },
  { additionalProperties: false },
);
export type Autonomy = Static<typeof AutonomySchema>;

export const NodeUnitSpecSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    autonomy: Type.Optional(AutonomySchema),
  },
  { additionalProperties: false },
);

export const NodeUnitStatusSchema = Type.Object(
  {
    nodes: Type.Optional(
      Type.Object({ total: Type.Integer(), ready: Type.Integer(), disconnected: Type.Integer(), down: Type.Optional(Type.Integer()) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

export const NodeUnitSchema = objectSchema('NodeUnit', Type.Optional(NodeUnitSpecSchema), NodeUnitStatusSchema);
export type NodeUnit = Static<typeof NodeUnitSchema>;
export { LabelsSchema };
