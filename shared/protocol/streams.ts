import { OutpostError } from '../errors.js';

/**
 * Tunnel streams (issue 8) on the agent's one WebSocket. JSON text frames stay the sync/report
 * protocol of frames.ts; every stream frame is a BINARY WebSocket message:
 *
 *   byte 0      frame type (StreamFrameType)
 *   bytes 1..4  stream id, uint32 big-endian (the hub allocates ids; only the hub opens streams)
 *   bytes 5..   payload: raw bytes for DATA, uint32 BE for CREDIT, UTF-8 JSON for OPEN, CONTROL,
 *               RESET; empty for ACCEPT and END
 *
 * Flow control: each side may send at most `credit` bytes of DATA payload on a stream; the
 * initial credit is STREAM_WINDOW_BYTES each way, and a receiver grants more (CREDIT n) only as
 * its consumer reads. A slow reader therefore stalls its own stream, never the session.
 * Priority: JSON frames (sync, ack, report) and WebSocket pings never queue behind stream data:
 * stream data waits in the mux's own queue and is handed to the socket only while less than
 * SOCKET_HIGH_WATER_BYTES of it is unsent.
 * Ordering: DATA, CONTROL and END of one stream arrive in the order they were sent; RESET
 * overtakes everything and ends the stream both ways.
 */
export const StreamFrameType = {
  /** hub -> agent: OpenRequest JSON. */
  OPEN: 1,
  /** agent -> hub: the handler accepted the stream. */
  ACCEPT: 2,
  DATA: 3,
  /** uint32: more bytes the sender may send. */
  CREDIT: 4,
  /** JSON object: per-kind control message (exec resize/exit, ...). */
  CONTROL: 5,
  /** The sender will write no more data (half close). */
  END: 6,
  /** ResetBody JSON: the stream is aborted both ways (also the refusal of an OPEN). */
  RESET: 7,
} as const;
export type StreamFrameType = (typeof StreamFrameType)[keyof typeof StreamFrameType];

export const STREAM_HEADER_BYTES = 5;
/** Initial (and maximum outstanding) credit per stream and direction, bytes. */
export const STREAM_WINDOW_BYTES = 2 * 1024 * 1024;
/**
 * Largest DATA payload in one frame. Large frames matter for throughput: each WebSocket message
 * costs a header, a send callback and a receive event on every hop.
 */
export const MAX_STREAM_CHUNK_BYTES = 256 * 1024;
/** Stream data handed to the socket but not yet written out, bytes (control frames wait behind at most this). */
export const SOCKET_HIGH_WATER_BYTES = 256 * 1024;
/** Default bound on open streams per node (hub `--max-streams-per-node`). */
export const DEFAULT_MAX_STREAMS_PER_NODE = 32;
/** Largest JSON payload (OPEN, CONTROL, RESET). */
export const MAX_STREAM_JSON_BYTES = 16 * 1024;

export type StreamKind = 'logs' | 'exec' | 'port-forward' | 'http';
export const STREAM_KINDS: readonly StreamKind[] = ['logs', 'exec', 'port-forward', 'http'];

/**
 * What a stream is for. The agent checks it: `instance` must be one it runs; `address`
 * ("host:port") must be in its `--tunnel-allow` list.
 */
export interface StreamTarget {
  instance?: string;
  /** TCP port on the instance (port-forward, http): the agent dials 127.0.0.1:port (container: its published port). */
  port?: number;
  /** host:port the agent dials directly; only addresses in the agent's allow list. */
  address?: string;
}

/** Per-kind parameters. logs: {follow, tail, sinceSeconds, previous}; exec: {command: string[], tty, cols, rows, stdin}. */
export type StreamParams = Record<string, unknown>;

export interface OpenRequest {
  kind: StreamKind;
  target: StreamTarget;
  params: StreamParams;
  /** Who opened it (for the agent's own log): the hub's operator identity. */
  user?: string;
}

/** `code` is an OutpostError code (OUTPOST_NOT_FOUND, OUTPOST_FORBIDDEN, OUTPOST_STREAM_LIMIT, ...). */
export interface ResetBody {
  code: string;
  message: string;
}

/**
 * Control messages (CONTROL frames, and text messages of the CLI relay WebSocket). Kinds may add
 * their own `type`s; these are the shared ones:
 *  - exec: {type:'resize', cols, rows} (CLI -> agent), {type:'exit', code} (agent -> CLI)
 *  - relay only (hub -> CLI): {type:'opened', node, instance?}, {type:'error', code, message}
 */
export type ControlMessage = { type: string } & Record<string, unknown>;

export interface StreamFrame {
  type: StreamFrameType;
  streamId: number;
  payload: Buffer;
}

export function encodeStreamFrame(type: StreamFrameType, streamId: number, payload?: Buffer | Uint8Array): Buffer {
  const len = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(STREAM_HEADER_BYTES + len);
  out[0] = type;
  out.writeUInt32BE(streamId >>> 0, 1);
  if (payload && len > 0) out.set(payload, STREAM_HEADER_BYTES);
  return out;
}

/** A DATA frame of `parts` (`bytes` in all), copied once into the frame. */
export function encodeDataFrame(streamId: number, parts: readonly Buffer[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(STREAM_HEADER_BYTES + bytes);
  out[0] = StreamFrameType.DATA;
  out.writeUInt32BE(streamId >>> 0, 1);
  let at = STREAM_HEADER_BYTES;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Completes a DATA frame built in place: `frame` is STREAM_HEADER_BYTES of room followed by the
 * payload (a socket read straight into it), so the frame goes out without a copy.
 */
export function writeDataHeader(frame: Buffer, streamId: number): Buffer {
  frame[0] = StreamFrameType.DATA;
  frame.writeUInt32BE(streamId >>> 0, 1);
  return frame;
}

export function encodeJsonFrame(type: StreamFrameType, streamId: number, body: object): Buffer {
  return encodeStreamFrame(type, streamId, Buffer.from(JSON.stringify(body)));
}

export function encodeCredit(streamId: number, bytes: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(bytes >>> 0, 0);
  return encodeStreamFrame(StreamFrameType.CREDIT, streamId, p);
}

/** Parses one binary message. Throws PROTOCOL naming what is wrong. */
export function decodeStreamFrame(data: Buffer): StreamFrame {
  if (data.length < STREAM_HEADER_BYTES) throw new OutpostError('PROTOCOL', `stream frame of ${data.length} bytes is shorter than its ${STREAM_HEADER_BYTES}-byte header`);
  const type = data[0] as StreamFrameType;
  if (type < StreamFrameType.OPEN || type > StreamFrameType.RESET) throw new OutpostError('PROTOCOL', `unknown stream frame type ${type}`);
  const payload = data.subarray(STREAM_HEADER_BYTES);
  if (type === StreamFrameType.CREDIT && payload.length !== 4) throw new OutpostError('PROTOCOL', 'CREDIT frame payload must be 4 bytes');
  if (type === StreamFrameType.DATA && payload.length > MAX_STREAM_CHUNK_BYTES) throw new OutpostError('PROTOCOL', `DATA frame of ${payload.length} bytes exceeds ${MAX_STREAM_CHUNK_BYTES}`);
  return { type, streamId: data.readUInt32BE(1), payload };
}

/** Parses a JSON payload (OPEN, CONTROL, RESET) as an object. Throws PROTOCOL. */
export function decodeJsonPayload(payload: Buffer, what: string): Record<string, unknown> {
  if (payload.length > MAX_STREAM_JSON_BYTES) throw new OutpostError('PROTOCOL', `${what} payload of ${payload.length} bytes exceeds ${MAX_STREAM_JSON_BYTES}`);
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new OutpostError('PROTOCOL', `${what} payload is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new OutpostError('PROTOCOL', `${what} payload must be a JSON object`);
  return value as Record<string, unknown>;
}

const INSTANCE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Validates an OPEN payload. Throws BAD_REQUEST naming the field. */
export function parseOpenRequest(body: Record<string, unknown>): OpenRequest {
  const { kind, target, params, user } = body;
  if (typeof kind !== 'string' || !(STREAM_KINDS as readonly string[]).includes(kind)) throw new OutpostError('BAD_REQUEST', `stream kind must be one of ${STREAM_KINDS.join(', ')}`);
  if (typeof target !== 'object' || target === null || Array.isArray(target)) throw new OutpostError('BAD_REQUEST', 'stream target must be an object');
  const t = target as Record<string, unknown>;
  const out: StreamTarget = {};
  if (t.instance !== undefined) {
    if (typeof t.instance !== 'string' || !INSTANCE_NAME.test(t.instance)) throw new OutpostError('BAD_REQUEST', 'target.instance must be an instance name');
    out.instance = t.instance;
  }
  if (t.port !== undefined) {
    if (!Number.isInteger(t.port) || (t.port as number) < 1 || (t.port as number) > 65535) throw new OutpostError('BAD_REQUEST', 'target.port must be an integer 1-65535');
    out.port = t.port as number;
  }
  if (t.address !== undefined) {
    if (typeof t.address !== 'string' || t.address.length > 261 || !/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(t.address)) throw new OutpostError('BAD_REQUEST', 'target.address must be host:port');
    out.address = t.address;
  }
  if (out.instance === undefined && out.address === undefined) throw new OutpostError('BAD_REQUEST', 'target needs an instance or an address');
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) throw new OutpostError('BAD_REQUEST', 'stream params must be an object');
  return { kind: kind as StreamKind, target: out, params: (params ?? {}) as StreamParams, ...(typeof user === 'string' ? { user: user.slice(0, 128) } : {}) };
}
