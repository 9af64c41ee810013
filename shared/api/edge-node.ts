import { Type, type Static } from '@sinclair/typebox';
import { described, NameSchema, objectSchema } from './meta.js';
import { TaintSchema } from './workload.js';

export const NodePhaseSchema = Type.Union([Type.Literal('Pending'), Type.Literal('Ready'), Type.Literal('Disconnected'), Type.Literal('Down')], { description: 'Pending: joined, never connected. Ready: a session is live. Disconnected: no session; keeps its instances. Down: disconnected past its unit\'s `autonomy.rescheduleAfter`; its instances move.' });
export type NodePhase = Static<typeof NodePhaseSchema>;

export const EdgeNodeSpecSchema = Type.Object(
  {
    unit: NameSchema,
    joinUnit: Type.Optional(described(NameSchema, 'The unit of the join token (membership falls back to it when no unit claims the node).')),
    taints: Type.Optional(Type.Array(TaintSchema, { maxItems: 64, description: 'Own taints plus those stamped by its unit.' })),
    unschedulable: Type.Optional(Type.Boolean({ description: 'No new instances on this node.' })),
  },
  { additionalProperties: false, description: 'One edge node; created by the hub when an agent joins. `spec.unit` is the unit it belongs to: the join token\'s unit, or the unit whose `nodes`/`selector` claims it (kept by the hub).' },
);

export const NodeConditionSchema = Type.Object(
  {
    type: Type.String({ maxLength: 64 }),
    status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
    reason: Type.String({ maxLength: 128 }),
    message: Type.String({ maxLength: 2048 }),
    lastTransitionTime: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false, description: 'A condition the agent reports about itself, e.g. CacheHealthy (Kubernetes condition shape).' },
);

export const EdgeNodeStatusSchema = Type.Object(
  {
    phase: NodePhaseSchema,
    since: Type.Optional(Type.String({ description: 'When the node entered its current phase (ISO 8601).' })),
    reason: Type.Optional(Type.String({ maxLength: 1024, description: 'Why the node is Down.' })),
    lastSeen: Type.Optional(Type.String()),
    appliedRevision: Type.Optional(Type.Integer({ minimum: 0, description: 'The last store revision the agent committed to its cache and acknowledged.' })),
    agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
    hostname: Type.Optional(Type.String({ maxLength: 253 })),
    addresses: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    capacity: Type.Optional(
      Type.Object({ cpus: Type.Integer({ minimum: 0 }), memoryBytes: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
    ),
    outboxDepth: Type.Optional(Type.Integer({ minimum: 0, description: 'Rows waiting in the agent\'s outbox when it last reported.' })),
    droppedEvents: Type.Optional(Type.Integer({ minimum: 0, description: 'Events the agent\'s outbox budget dropped while the hub was unreachable (ever).' })),
    conditions: Type.Optional(Type.Array(NodeConditionSchema, { maxItems: 16, description: 'What the agent reports about itself: CacheHealthy.' })),
    instances: Type.Optional(Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'Instances the agent runs, by phase.' })),
    peerEndpoint: Type.Optional(Type.String({ maxLength: 300, description: 'host:port where the agent\'s registry peer listener is reached (from its hello; absent with --peer-listen none).' })),
  },
  { additionalProperties: false },
);
export type EdgeNodeStatus = Static<typeof EdgeNodeStatusSchema>;

export const EdgeNodeSchema = objectSchema('EdgeNode', EdgeNodeSpecSchema, EdgeNodeStatusSchema);
export type EdgeNode = Static<typeof EdgeNodeSchema>;
