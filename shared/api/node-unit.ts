import { Type, type Static } from '@sinclair/typebox';
import { LabelsSchema, objectSchema } from './meta.js';

/** A site: the nodes that joined with a token of this unit are its members. */
export const NodeUnitSpecSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

export const NodeUnitStatusSchema = Type.Object(
  {
    nodes: Type.Optional(
      Type.Object({ total: Type.Integer(), ready: Type.Integer(), disconnected: Type.Integer() }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

export const NodeUnitSchema = objectSchema('NodeUnit', Type.Optional(NodeUnitSpecSchema), NodeUnitStatusSchema);
export type NodeUnit = Static<typeof NodeUnitSchema>;
export { LabelsSchema };
