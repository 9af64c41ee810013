import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { InstanceStatusSchema } from '../api/instance.js';
import { PropertyValueSchema } from '../api/device.js';
import { NodeConditionSchema } from '../api/edge-node.js';
import { NameSchema, type AnyObject } from '../api/meta.js';
import { PeerEndpointSchema } from '../api/unit-peers.js';
import { RegistryRecordSchema } from '../registry/record-schema.js';
import { OutpostError } from '../errors.js';

/**
 * The agent <-> hub wire protocol: JSON text frames over one WebSocket per agent, dialled by the
 * agent to `/agent/v1/connect` with `Authorization: Bearer <node-credential>`.
 *
 * Sync: `hello` lists what the agent's cache holds (kind, name, resourceVersion). The hub answers
 * with one `sync` whose `keys` list the node's whole desired set, whose `objects` hold the ones the
 * agent lacks or holds at another resourceVersion, and whose `deletes` name what it must drop;
 * then one `sync` per relevant change. This digest resync is exact whatever happened meanwhile
 * (history compacted, hub restored from backup, objects moving in or out of the node's scope). The agent commits each sync in one transaction, then sends `ack`.
 * Outbox: the agent sends `report` batches; the hub stores them, then answers `reported{ackSeq}`.
 */
export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
export const MAX_REPORT_ITEMS = 500;

const Key = Type.Object({ kind: Type.String({ maxLength: 64 }), name: Type.String({ maxLength: 253 }) }, { additionalProperties: false });
export type ObjectKey = Static<typeof Key>;
const CachedKey = Type.Object(
  {
    kind: Type.String({ maxLength: 64 }),
    name: Type.String({ maxLength: 253 }),
    /** `objectDigest` of the cached object (shared/hash.ts). */
    digest: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);
export type CachedKey = Static<typeof CachedKey>;

// ---- agent -> hub

export const HelloFrame = Type.Object(
  {
    type: Type.Literal('hello'),
    protocol: Type.Integer({ minimum: 1 }),
    appliedRevision: Type.Integer({ minimum: 0 }),
    agentVersion: Type.String({ maxLength: 64 }),
    hostname: Type.Optional(Type.String({ maxLength: 253 })),
    /** Where instance logs are on the node (`<data>/logs`): named in the hub's node-disconnected errors. */
    logDir: Type.Optional(Type.String({ maxLength: 4096 })),
    capacity: Type.Optional(Type.Object({ cpus: Type.Integer({ minimum: 0 }), memoryBytes: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })),
    /** What the agent's cache holds: the hub sends only objects whose resourceVersion differs. */
    cached: Type.Array(CachedKey, { maxItems: 50_000 }),
    /** host:port where the agent's registry peer listener is reached; absent with --peer-listen none. */
    peerEndpoint: Type.Optional(PeerEndpointSchema),
  },
  { additionalProperties: false },
);

export const AckFrame = Type.Object({ type: Type.Literal('ack'), revision: Type.Integer({ minimum: 0 }) }, { additionalProperties: false });

export const InstanceStatusItem = Type.Object(
  { seq: Type.Integer({ minimum: 1 }), kind: Type.Literal('instance-status'), body: Type.Object({ name: NameSchema, status: InstanceStatusSchema }, { additionalProperties: false }) },
  { additionalProperties: false },
);
export const NodeStatusItem = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    kind: Type.Literal('node-status'),
    body: Type.Object(
      {
        outboxDepth: Type.Optional(Type.Integer({ minimum: 0 })),
        droppedEvents: Type.Optional(Type.Integer({ minimum: 0 })),
        conditions: Type.Optional(Type.Array(NodeConditionSchema, { maxItems: 16 })),
        instances: Type.Optional(Type.Record(Type.String({ maxLength: 32 }), Type.Integer({ minimum: 0 }))),
        node: Type.Optional(Type.String({ maxLength: 253 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export const EventItem = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    kind: Type.Literal('event'),
    body: Type.Object(
      {
        type: Type.Union([Type.Literal('Normal'), Type.Literal('Warning')]),
        reason: Type.String({ maxLength: 128 }),
        message: Type.String({ maxLength: 4096 }),
        object: Key,
        time: Type.String({ maxLength: 64 }),
        /** Identifies a fact that must be stored once per object, e.g. `end:<pid>`. */
        key: Type.Optional(Type.String({ maxLength: 64 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const DeviceValues = Type.Record(Type.String({ maxLength: 64 }), PropertyValueSchema, { additionalProperties: false, maxProperties: 256 });

/** A device's reported twin values (already validated against its model by the agent). Coalesced per device in the outbox (values merged, newest wins per property). */
export const DeviceReportItem = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    kind: Type.Literal('device-report'),
    body: Type.Object(
      {
        device: NameSchema,
        /** prop -> {value, timestamp, version?}: each property keeps the time (and device version) it was reported with. */
        reported: Type.Record(Type.String({ maxLength: 64 }), Type.Object({ value: PropertyValueSchema, timestamp: Type.String({ maxLength: 64 }), version: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }), { additionalProperties: false, maxProperties: 256 }),
        /** The device's own report counter, when it sends one. */
        version: Type.Optional(Type.Integer({ minimum: 0 })),
        /** The desired version the device acknowledged. */
        observedDesired: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** One telemetry message, in order per device; the hub stores it once per (node, seq). */
export const TelemetryItem = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    kind: Type.Literal('telemetry'),
    body: Type.Object(
      {
        device: NameSchema,
        /** The device's timestamp, or the agent's arrival time (ISO 8601). */
        timestamp: Type.String({ maxLength: 64 }),
        values: DeviceValues,
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** A device connected or disconnected (MQTT connect, disconnect, last will, keepalive timeout). Coalesced per device. */
export const DevicePresenceItem = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    kind: Type.Literal('device-presence'),
    body: Type.Object({ device: NameSchema, online: Type.Boolean(), at: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);

/**
 * One record of the agent's unit registry (own or replicated; README "Global view"). Coalesced per
 * record key in the outbox: only the newest version is queued. The hub merges by `supersedes`.
 */
export const RegistryRecordItem = Type.Object(
  { seq: Type.Integer({ minimum: 1 }), kind: Type.Literal('registry-record'), body: RegistryRecordSchema },
  { additionalProperties: false },
);

/**
 * Peer health vote: which of its unit's peers the agent can reach over the peer link (SWIM alive)
 * and which it cannot (suspect or dead). Coalesced per agent; re-sent periodically so the hub can
 * tell a fresh vote from an old one.
 */
export const PeerHealthItem = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    kind: Type.Literal('peer-health'),
    body: Type.Object(
      {
        reachable: Type.Array(NameSchema, { maxItems: 10_000 }),
        unreachable: Type.Array(NameSchema, { maxItems: 10_000 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const ReportItem = Type.Union([InstanceStatusItem, NodeStatusItem, EventItem, DeviceReportItem, TelemetryItem, DevicePresenceItem, RegistryRecordItem, PeerHealthItem]);
export type ReportItem = Static<typeof ReportItem>;
export type InstanceStatusReport = Static<typeof InstanceStatusItem>;
export type NodeStatusReport = Static<typeof NodeStatusItem>;
export type EventReport = Static<typeof EventItem>;
export type DeviceReport = Static<typeof DeviceReportItem>;
export type TelemetryReport = Static<typeof TelemetryItem>;
export type DevicePresenceReport = Static<typeof DevicePresenceItem>;
export type RegistryRecordReport = Static<typeof RegistryRecordItem>;
export type PeerHealthReport = Static<typeof PeerHealthItem>;

/** The frame checks only each item's envelope; items are validated one by one (reportItemProblem). */
export const RawReportItem = Type.Object({ seq: Type.Integer({ minimum: 1 }), kind: Type.String({ maxLength: 64 }), body: Type.Unknown() });
export type RawReportItem = Static<typeof RawReportItem>;

export const ReportFrame = Type.Object(
  { type: Type.Literal('report'), items: Type.Array(RawReportItem, { minItems: 1, maxItems: MAX_REPORT_ITEMS }) },
  { additionalProperties: false },
);

export const AgentFrame = Type.Union([HelloFrame, AckFrame, ReportFrame]);
export type AgentFrame = Static<typeof AgentFrame>;
export type HelloFrame = Static<typeof HelloFrame>;
export type ReportFrame = Static<typeof ReportFrame>;

// ---- hub -> agent

export interface WelcomeFrame {
  type: 'welcome';
  node: string;
  unit: string;
  /** The hub's store revision when the session started. */
  revision: number;
}

export interface SyncFrame {
  type: 'sync';
  /** The store revision this batch brings the agent to. */
  revision: number;
  /** Objects to upsert (full objects, status included). */
  objects: AnyObject[];
  /** Objects to delete. */
  deletes: ObjectKey[];
  /** When set, the complete desired set after this batch: everything cached and not listed is deleted. */
  keys?: ObjectKey[];
}

export interface ReportedFrame {
  type: 'reported';
  /** Every outbox row the agent sent with seq <= ackSeq is stored (or rejected, below). */
  ackSeq: number;
  rejected: { seq: number; code: string; message: string }[];
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
}

export type HubFrame = WelcomeFrame | SyncFrame | ReportedFrame | ErrorFrame;

/** WebSocket close codes the hub and agent use (4000-4999 are application codes). */
export const CloseCodes = {
  PROTOCOL_ERROR: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  REPLACED: 4409,
  /** The node changed units: reconnect to get the new scope. */
  RESCOPED: 4410,
  DEADLINE: 4408,
  SHUTDOWN: 4503,
} as const;

// Compiled on first use: the hub checks every agent frame; an agent never does (issue 7, footprint).
let compiledAgentFrameCheck: ReturnType<typeof TypeCompiler.Compile<typeof AgentFrame>> | undefined;
let compiledReportItemCheck: ReturnType<typeof TypeCompiler.Compile<typeof ReportItem>> | undefined;
const agentFrameCheck = () => (compiledAgentFrameCheck ??= TypeCompiler.Compile(AgentFrame));
const reportItemCheck = () => (compiledReportItemCheck ??= TypeCompiler.Compile(ReportItem));

/** Why one outbox item is invalid, or undefined when it is valid. */
export function reportItemProblem(item: RawReportItem): string | undefined {
  if (reportItemCheck().Check(item)) return undefined;
  const first = reportItemCheck().Errors(item).First();
  return `invalid ${item.kind.slice(0, 32)} item${first ? ` at ${first.path || '/'}: ${first.message}` : ''}`;
}

/** Parses and validates one frame from an agent. Throws PROTOCOL naming what is wrong. */
export function parseAgentFrame(data: string): AgentFrame {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new OutpostError('PROTOCOL', 'frame is not JSON');
  }
  if (!agentFrameCheck().Check(value)) {
    const type = (value as { type?: unknown } | null)?.type;
    const first = agentFrameCheck().Errors(value).First();
    throw new OutpostError('PROTOCOL', `invalid ${typeof type === 'string' ? `"${type.slice(0, 32)}" ` : ''}frame${first ? ` at ${first.path || '/'}: ${first.message}` : ''}`);
  }
  return value;
}

/** Parses a frame from the hub. The agent trusts the hub (pinned) but still refuses garbage. */
export function parseHubFrame(data: string): HubFrame {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new OutpostError('PROTOCOL', 'hub frame is not JSON');
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (type !== 'welcome' && type !== 'sync' && type !== 'reported' && type !== 'error') {
    throw new OutpostError('PROTOCOL', `unknown hub frame type ${JSON.stringify(type)}`);
  }
  return value as HubFrame;
}
