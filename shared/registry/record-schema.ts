import { Type, type Static } from '@sinclair/typebox';

/**
 * The wire schema of a RegistryRecord (shared/registry/records.ts) as agents report it to the hub.
 * Limits follow the contract: service a DNS label, id 1-128 of [A-Za-z0-9._:-], weight 1..1000.
 */
const Label = Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', maxLength: 63 });
const NodeName = Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 });
const InstanceId = Type.String({ pattern: '^[A-Za-z0-9._:-]{1,128}$' });
/** An IP literal as the wire carries it (an IPv6 zone limited to [A-Za-z0-9._-]); the agent's HTTP API checks registrations against it too. */
export const INSTANCE_ADDRESS_PATTERN = '^[0-9A-Fa-f.:]+(%[A-Za-z0-9._-]+)?$';
export const INSTANCE_ADDRESS_MAX_LENGTH = 64;
/**
 * Highest registry incarnation any wire takes. Real ones count agent starts; a record from a peer
 * with a higher one would make its origin re-assert under incarnation + 1 (past what peers accept,
 * and past what SWIM's incarnation x 1 000 000 keeps exact), stopping its replication for good.
 */
export const MAX_INCARNATION = 2 ** 31;

export const ServiceInstanceSchema = Type.Object(
  {
    service: Label,
    id: InstanceId,
    node: NodeName,
    unit: NodeName,
    address: Type.String({ minLength: 2, maxLength: INSTANCE_ADDRESS_MAX_LENGTH, pattern: INSTANCE_ADDRESS_PATTERN }),
    port: Type.Integer({ minimum: 0, maximum: 65535 }),
    protocol: Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('http'), Type.Literal('https'), Type.Literal('grpc')]),
    metadata: Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), { maxProperties: 64 }),
    weight: Type.Integer({ minimum: 1, maximum: 1000 }),
    health: Type.Union([Type.Literal('passing'), Type.Literal('critical')]),
    lease: Type.Union([
      Type.Object({ kind: Type.Literal('ttl'), ttlMs: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
      Type.Object({ kind: Type.Literal('process'), instance: Type.String({ maxLength: 253 }) }, { additionalProperties: false }),
    ]),
  },
  { additionalProperties: false },
);

export const RegistryRecordSchema = Type.Object(
  {
    key: Type.String({ maxLength: 200 }),
    origin: NodeName,
    version: Type.Object({ incarnation: Type.Integer({ minimum: 0, maximum: MAX_INCARNATION }), counter: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
    instance: Type.Optional(ServiceInstanceSchema),
  },
  { additionalProperties: false },
);
export type RegistryRecordWire = Static<typeof RegistryRecordSchema>;
