import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { PeerEndpointSchema } from '../../../shared/api/unit-peers.js';
// One instance schema for every wire (peer frames and hub reports): a record one side accepts is
// never refused by the other, which would close the peer link on every exchange.
import { MAX_INCARNATION, ServiceInstanceSchema } from '../../../shared/registry/record-schema.js';
import type { RegistryRecord } from '../records.js';

/**
 * The peer link protocol (README "Replication and failure detection"): JSON text frames over a
 * WebSocket that one agent dials to another agent of its unit at `/peer/v1`.
 *
 * Handshake (mutual, HMAC-SHA256 with the unit peer credential; the secret never crosses the wire):
 *   server -> `challenge{node, unit, nonce}`; client -> `hello{node, unit, nonce, incarnation, proof}`;
 *   server -> `welcome{incarnation, proof}`. Then the dialler sends requests (push, digest, records,
 *   ping, ping-req) and the listener answers on the same socket (digest, records, ack).
 */
export const PEER_PROTOCOL_PATH = '/peer/v1';
export const MAX_PEER_FRAME_BYTES = 4 * 1024 * 1024;
/** Records per frame: well under the frame limit with the largest allowed instance. */
export const MAX_RECORDS_PER_FRAME = 500;
export const MAX_MEMBERS = 1000;

const NodeName = Type.String({ minLength: 1, maxLength: 253 });
const Nonce = Type.String({ minLength: 16, maxLength: 64 });
const Proof = Type.String({ minLength: 64, maxLength: 64, pattern: '^[0-9a-f]{64}$' });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Incarnation = Type.Integer({ minimum: 0, maximum: MAX_INCARNATION });

export const RecordSchema = Type.Object(
  {
    key: Type.String({ minLength: 3, maxLength: 256 }),
    origin: NodeName,
    version: Type.Object({ incarnation: Incarnation, counter: Count }, { additionalProperties: false }),
    instance: Type.Optional(ServiceInstanceSchema),
  },
  { additionalProperties: false },
);

/** One origin's records as a replica holds them: compared to find what to exchange. */
export const OriginDigestSchema = Type.Object(
  {
    origin: NodeName,
    /** Highest incarnation among the records held. */
    incarnation: Count,
    /** Live (non-tombstone) records held. */
    live: Count,
    /** Hash of the live records' keys and versions (see digest.ts). */
    hash: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);
export type OriginDigest = Static<typeof OriginDigestSchema>;

export const MemberStatusSchema = Type.Union([Type.Literal('alive'), Type.Literal('suspect'), Type.Literal('dead')]);
export type MemberStatus = Static<typeof MemberStatusSchema>;
/** A SWIM membership fact, piggybacked on every ping and ack. */
export const MemberFactSchema = Type.Object({ node: NodeName, status: MemberStatusSchema, inc: Count }, { additionalProperties: false });
export type MemberFact = Static<typeof MemberFactSchema>;
const Members = Type.Array(MemberFactSchema, { maxItems: MAX_MEMBERS });

const frames = {
  challenge: Type.Object({ t: Type.Literal('challenge'), node: NodeName, unit: NodeName, nonce: Nonce }, { additionalProperties: false }),
  /** `endpoint`: where the dialler listens, so that a peer learns a new address without the hub. */
  hello: Type.Object({ t: Type.Literal('hello'), node: NodeName, unit: NodeName, nonce: Nonce, incarnation: Incarnation, proof: Proof, endpoint: Type.Optional(PeerEndpointSchema) }, { additionalProperties: false }),
  welcome: Type.Object({ t: Type.Literal('welcome'), incarnation: Incarnation, proof: Proof }, { additionalProperties: false }),
  /** Records as their origin changed them; `sentAt` (sender's ms epoch) measures register-to-visible. */
  push: Type.Object({ t: Type.Literal('push'), records: Type.Array(RecordSchema, { minItems: 1, maxItems: MAX_RECORDS_PER_FRAME }), sentAt: Type.Optional(Count) }, { additionalProperties: false }),
  /** Anti-entropy: the sender's digest of every origin it holds. */
  digest: Type.Object({ t: Type.Literal('digest'), origins: Type.Array(OriginDigestSchema, { maxItems: MAX_MEMBERS }) }, { additionalProperties: false }),
  /**
   * Records of the origins whose digests differ. `own` marks the sender's complete set of its
   * own records, in chunks; `last` on the final chunk lets the receiver retire records of the
   * sender's older incarnations that the set no longer has.
   */
  records: Type.Object(
    {
      t: Type.Literal('records'),
      records: Type.Array(RecordSchema, { maxItems: MAX_RECORDS_PER_FRAME }),
      own: Type.Optional(Type.Object({ round: Count, last: Type.Boolean(), incarnation: Incarnation }, { additionalProperties: false })),
    },
    { additionalProperties: false },
  ),
  ping: Type.Object({ t: Type.Literal('ping'), seq: Count, members: Members }, { additionalProperties: false }),
  /** Ask the listener to ping `target` for the sender (SWIM indirect probe). */
  'ping-req': Type.Object({ t: Type.Literal('ping-req'), seq: Count, target: NodeName, members: Members }, { additionalProperties: false }),
  /** Answer to ping or ping-req: `node` answered (itself, or the ping-req target). */
  ack: Type.Object({ t: Type.Literal('ack'), seq: Count, node: NodeName, inc: Count, members: Members }, { additionalProperties: false }),
};

export const PeerFrameSchema = Type.Union(Object.values(frames));
export type PeerFrame = Static<typeof PeerFrameSchema>;
export type PeerFrameOf<T extends PeerFrame['t']> = Extract<PeerFrame, { t: T }>;

const checks = new Map(Object.entries(frames).map(([t, schema]) => [t, TypeCompiler.Compile(schema)]));

export class PeerFrameError extends Error {}

/** Parses one frame from a peer; throws PeerFrameError naming what is wrong (never the payload). */
export function parsePeerFrame(data: string): PeerFrame {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new PeerFrameError('peer frame is not JSON');
  }
  const t = (value as { t?: unknown } | null)?.t;
  // Checked against the schema its type names, so that the error points at the wrong field.
  const check = typeof t === 'string' ? checks.get(t) : undefined;
  if (!check) throw new PeerFrameError(`unknown peer frame type ${typeof t === 'string' ? JSON.stringify(t.slice(0, 32)) : typeof t}`);
  if (!check.Check(value)) {
    const first = check.Errors(value).First();
    throw new PeerFrameError(`invalid "${t as string}" peer frame${first ? ` at ${first.path || '/'}: ${first.message}` : ''}`);
  }
  return value as PeerFrame;
}

/** A WebSocket message as a peer frame (text only); throws PeerFrameError naming what is wrong. */
export function decodePeerMessage(data: { toString(): string }, isBinary: boolean): PeerFrame {
  if (isBinary) throw new PeerFrameError('binary frames are not part of the peer protocol');
  return parsePeerFrame(data.toString());
}

/**
 * Why a record from a peer of `unit` cannot be merged, or undefined: its key must be its
 * instance's service/id, its origin the instance's node, and the instance in this unit.
 */
export function recordProblem(record: RegistryRecord, unit: string): string | undefined {
  const i = record.instance;
  if (!i) return record.key.includes('/') ? undefined : `record key "${record.key.slice(0, 64)}" is not service/id`;
  if (record.key !== `${i.service}/${i.id}`) return `record key "${record.key.slice(0, 64)}" does not match its instance`;
  if (i.node !== record.origin) return `record ${record.key} has origin ${record.origin} but instance node ${i.node.slice(0, 64)}`;
  if (i.unit !== unit) return `record ${record.key} belongs to unit ${i.unit.slice(0, 64)}, not ${unit}`;
  return undefined;
}

/** Target JSON size of one frame's records: well under MAX_PEER_FRAME_BYTES (a record is at most ~80 KiB). */
export const CHUNK_BYTES = 1024 * 1024;

/** Splits records into frames of at most MAX_RECORDS_PER_FRAME records and about CHUNK_BYTES of JSON. */
export function chunkRecords(records: Iterable<RegistryRecord>, maxBytes = CHUNK_BYTES): RegistryRecord[][] {
  const out: RegistryRecord[][] = [];
  let current: RegistryRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const n = JSON.stringify(r).length;
    if (current.length > 0 && (current.length >= MAX_RECORDS_PER_FRAME || bytes + n > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += n;
  }
  if (current.length > 0) out.push(current);
  return out;
}
