import { Type, type Static } from '@sinclair/typebox';
import { described, LabelsSchema, MatchLabelsSelectorSchema, NameSchema, objectSchema } from './meta.js';
import { NodeConditionSchema } from './edge-node.js';
import { TaintSchema } from './workload.js';

export const DurationSchema = Type.String({ pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$', maxLength: 32, description: 'a duration such as 30s, 10m, 24h, 7d' });

export const AutonomySchema = Type.Object(
  {
    rescheduleAfter: Type.Optional(Type.Union([DurationSchema, Type.Null()], { description: 'How long a node of this unit may stay Disconnected before it is declared Down and its instances move to other nodes of the unit. null or absent: never (the default). Offline alone is never a reason to move work unless the operator chose so here.' })),
    peerHealth: Type.Optional(Type.Boolean({ description: 'With true, a Disconnected node is also declared Down when a majority of the unit\'s connected nodes report (peer health votes, fresh) that they cannot reach it either. A unit whose nodes are all silent is never declared Down by vote. Default false.' })),
  },
  { additionalProperties: false },
);
export type Autonomy = Static<typeof AutonomySchema>;

export const NodeUnitSpecSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    autonomy: Type.Optional(described(AutonomySchema, 'What happens to a node of the unit that stays disconnected: by default nothing (it keeps its instances).')),
    selector: Type.Optional(described(MatchLabelsSelectorSchema, 'Nodes whose labels (given by their join token) match are members.')),
    nodes: Type.Optional(Type.Array(NameSchema, { maxItems: 10000, description: 'Nodes that are members by name.' })),
    nodeLabels: Type.Optional(described(LabelsSchema, 'Labels stamped on every member node (removed when it leaves).')),
    taints: Type.Optional(Type.Array(TaintSchema, { maxItems: 32, description: 'Taints stamped on every member node (removed when it leaves).' })),
    cordon: Type.Optional(Type.Boolean({ description: 'No new instances are placed in the unit; running ones stay.' })),
  },
  { additionalProperties: false, description: 'A site. Members: the nodes listed in `nodes`, the nodes whose labels match `selector`, and the nodes that joined with a token of this unit and are claimed by no other unit. Members carry `nodeLabels` and `taints` (stamped by the hub) and the label outpost.dev/unit.' },
);

export const NodeUnitStatusSchema = Type.Object(
  {
    nodes: Type.Optional(
      Type.Object({ total: Type.Integer(), ready: Type.Integer(), disconnected: Type.Integer(), down: Type.Optional(Type.Integer()) }, { additionalProperties: false }),
    ),
    conditions: Type.Optional(Type.Array(NodeConditionSchema, { maxItems: 16, description: 'Ready (some node is Ready), Cordoned, MembershipConflict (a node claimed by two units).' })),
  },
  { additionalProperties: false },
);

export const NodeUnitSchema = objectSchema('NodeUnit', Type.Optional(NodeUnitSpecSchema), NodeUnitStatusSchema);
export type NodeUnit = Static<typeof NodeUnitSchema>;
export { LabelsSchema };
