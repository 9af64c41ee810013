import { Type, type Static } from '@sinclair/typebox';
import { NameSchema, objectSchema } from './meta.js';
import { TaintSchema } from './workload.js';

/**
 * Pending: joined, never connected. Ready: a session is live. Disconnected: no session; keeps its
 * instances. Down: disconnected past its unit's `autonomy.rescheduleAfter`; its instances move.
 */
export const NodePhaseSchema = Type.Union([Type.Literal('Pending'), Type.Literal('Ready'), Type.Literal('Disconnected'), Type.Literal('Down')]);
export type NodePhase = Static<typeof NodePhaseSchema>;

/**
 * One edge node; created by the hub when an agent joins. `spec.unit` is the unit it belongs to: the
 * join token's unit, or the unit whose `nodes`/`selector` claims it (kept by the hub).
 */
export const EdgeNodeSpecSchema = Type.Object(
  {
    unit: NameSchema,
    /** The unit of the join token (membership falls back to it when no unit claims the node). */
    joinUnit: Type.Optional(NameSchema),
    /** Own taints plus those stamped by its unit. */
    taints: Type.Optional(Type.Array(TaintSchema, { maxItems: 64 })),
    /** No new instances on this node. */
    unschedulable: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** A condition the agent reports about itself, e.g. CacheHealthy (Kubernetes condition shape). */
export const NodeConditionSchema = Type.Object(
  {
    type: Type.String({ maxLength: 64 }),
    status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
    reason: Type.String({ maxLength: 128 }),
    message: Type.String({ maxLength: 2048 }),
    lastTransitionTime: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);

export const EdgeNodeStatusSchema = Type.Object(
  {
    phase: NodePhaseSchema,
    /** When the node entered its current phase (ISO 8601). */
    since: Type.Optional(Type.String()),
    /** Why the node is Down. */
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
    lastSeen: Type.Optional(Type.String()),
    /** The last store revision the agent committed to its cache and acknowledged. */
    appliedRevision: Type.Optional(Type.Integer({ minimum: 0 })),
    agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
    hostname: Type.Optional(Type.String({ maxLength: 253 })),
    addresses: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    capacity: Type.Optional(
      Type.Object({ cpus: Type.Integer({ minimum: 0 }), memoryBytes: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
    ),
    /** Rows waiting in the agent's outbox when it last reported. */
    outboxDepth: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Events the agent's outbox budget dropped while the hub was unreachable (ever). */
    droppedEvents: Type.Optional(Type.Integer({ minimum: 0 })),
    /** What the agent reports about itself: CacheHealthy. */
    conditions: Type.Optional(Type.Array(NodeConditionSchema, { maxItems: 16 })),
    /** Instances the agent runs, by phase. */
    instances: Type.Optional(Type.Record(Type.String(), Type.Integer({ minimum: 0 }))),
    /** host:port where the agent's registry peer listener is reached (from its hello; absent with --peer-listen none). */
    peerEndpoint: Type.Optional(Type.String({ maxLength: 300 })),
  },
  { additionalProperties: false },
);
export type EdgeNodeStatus = Static<typeof EdgeNodeStatusSchema>;

export const EdgeNodeSchema = objectSchema('EdgeNode', EdgeNodeSpecSchema, EdgeNodeStatusSchema);
export type EdgeNode = Static<typeof EdgeNodeSchema>;
