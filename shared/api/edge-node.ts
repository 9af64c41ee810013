import { Type, type Static } from '@sinclair/typebox';
import { NameSchema, objectSchema } from './meta.js';

export const NodePhaseSchema = Type.Union([Type.Literal('Pending'), Type.Literal('Ready'), Type.Literal('Disconnected')]);
export type NodePhase = Static<typeof NodePhaseSchema>;

/** One edge node; created by the hub when an agent joins. `spec.unit` comes from the join token. */
export const EdgeNodeSpecSchema = Type.Object({ unit: NameSchema }, { additionalProperties: false });

export const EdgeNodeStatusSchema = Type.Object(
  {
    phase: NodePhaseSchema,
    /** When the node entered its current phase (ISO 8601). */
    since: Type.Optional(Type.String()),
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
    /** Instances the agent runs, by phase. */
    instances: Type.Optional(Type.Record(Type.String(), Type.Integer({ minimum: 0 }))),
  },
  { additionalProperties: false },
);
export type EdgeNodeStatus = Static<typeof EdgeNodeStatusSchema>;

export const EdgeNodeSchema = objectSchema('EdgeNode', EdgeNodeSpecSchema, EdgeNodeStatusSchema);
export type EdgeNode = Static<typeof EdgeNodeSchema>;
