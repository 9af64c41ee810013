import type { DeviceModel, Property, PropertyValue } from '../../shared/api/device.js';
import type { RejectReason } from '../../shared/devices/topics.js';

// Validation of what devices publish, against their DeviceModel. Pure functions.

export const MAX_PAYLOAD_BYTES = 64 * 1024;
const DEFAULT_MAX_LENGTH = 1024;
const MAX_VALUES = 256;

export interface Rejection {
  reason: RejectReason;
  error: string;
}

export type Values = Record<string, PropertyValue>;

export interface TelemetryMessage {
  timestamp: string;
  values: Values;
}

export interface ReportMessage {
  timestamp: string;
  values: Values;
  version?: number;
  observedDesired?: number;
}

type Parsed<T> = { ok: true; value: T } | ({ ok: false } & Rejection);

const reject = (reason: RejectReason, error: string): { ok: false } & Rejection => ({ ok: false, reason, error });

function parseObject(payload: Buffer): Parsed<Record<string, unknown>> {
  if (payload.length > MAX_PAYLOAD_BYTES) return reject('too-large', `payload is ${payload.length} bytes; at most ${MAX_PAYLOAD_BYTES}`);
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    return reject('not-json', `payload is not JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return reject('not-json', 'payload must be a JSON object');
  return { ok: true, value: json as Record<string, unknown> };
}

/** How far a device's `ts` may be ahead of the agent's clock (clock skew), ms. */
export const MAX_TS_AHEAD_MS = 5 * 60_000;

/**
 * `ts` as ISO 8601: an ISO string or epoch milliseconds; absent = now. A time further ahead than
 * MAX_TS_AHEAD_MS is refused: the hub orders reported values by time, so one value stamped in the
 * future would hide every later report of that property.
 */
function timestampOf(ts: unknown, now: number): Parsed<string> {
  if (ts === undefined) return { ok: true, value: new Date(now).toISOString() };
  const date = typeof ts === 'number' || typeof ts === 'string' ? new Date(ts) : new Date(NaN);
  if (Number.isNaN(date.getTime())) return reject('wrong-type', '"ts" must be an ISO 8601 time or epoch milliseconds');
  if (date.getTime() > now + MAX_TS_AHEAD_MS) return reject('out-of-range', `"ts" ${date.toISOString()} is more than ${MAX_TS_AHEAD_MS / 60_000} minutes ahead of the agent's clock (${new Date(now).toISOString()}): fix the device's clock or leave "ts" out`);
  return { ok: true, value: date.toISOString() };
}

/** Checks one value against its property. */
export function checkValue(prop: Property, value: unknown): Rejection | undefined {
  const name = prop.name;
  switch (prop.type) {
    case 'int':
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) return { reason: 'wrong-type', error: `"${name}" must be a number (${prop.type})` };
      if (prop.type === 'int' && !Number.isInteger(value)) return { reason: 'wrong-type', error: `"${name}" must be an integer` };
      if (prop.minimum !== undefined && value < prop.minimum) return { reason: 'out-of-range', error: `"${name}" is ${value}; minimum ${prop.minimum}` };
      if (prop.maximum !== undefined && value > prop.maximum) return { reason: 'out-of-range', error: `"${name}" is ${value}; maximum ${prop.maximum}` };
      return undefined;
    case 'bool':
      return typeof value === 'boolean' ? undefined : { reason: 'wrong-type', error: `"${name}" must be true or false` };
    case 'string': {
      if (typeof value !== 'string') return { reason: 'wrong-type', error: `"${name}" must be a string` };
      const max = prop.maxLength ?? DEFAULT_MAX_LENGTH;
      return value.length > max ? { reason: 'out-of-range', error: `"${name}" is ${value.length} characters; at most ${max}` } : undefined;
    }
    case 'enum':
      if (typeof value !== 'string') return { reason: 'wrong-type', error: `"${name}" must be one of ${(prop.enum ?? []).join(', ')}` };
      return (prop.enum ?? []).includes(value) ? undefined : { reason: 'out-of-range', error: `"${name}" is "${value}"; allowed: ${(prop.enum ?? []).join(', ')}` };
  }
}

/** Checks every value against the model: unknown properties, types and ranges. */
export function checkValues(model: DeviceModel, values: Record<string, unknown>): Parsed<Values> {
  const entries = Object.entries(values);
  if (entries.length > MAX_VALUES) return reject('too-large', `${entries.length} values; at most ${MAX_VALUES}`);
  const props = new Map(model.spec.properties.map((p) => [p.name, p]));
  for (const [name, value] of entries) {
    const prop = props.get(name);
    if (!prop) return reject('unknown-property', `model "${model.metadata.name}" has no property "${name}"`);
    const problem = checkValue(prop, value);
    if (problem) return { ok: false, ...problem };
  }
  return { ok: true, value: values as Values };
}

/** Telemetry: `{"ts"?: time, ...values}`. */
export function parseTelemetry(model: DeviceModel, payload: Buffer, now: number): Parsed<TelemetryMessage> {
  const obj = parseObject(payload);
  if (!obj.ok) return obj;
  const { ts, ...rest } = obj.value;
  const timestamp = timestampOf(ts, now);
  if (!timestamp.ok) return timestamp;
  const values = checkValues(model, rest);
  if (!values.ok) return values;
  return { ok: true, value: { timestamp: timestamp.value, values: values.value } };
}

const isCounter = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Reported twin: `{"values": {...}, "version"?: n, "observedDesired"?: n, "ts"?: time}`. */
export function parseReport(model: DeviceModel, payload: Buffer, now: number): Parsed<ReportMessage> {
  const obj = parseObject(payload);
  if (!obj.ok) return obj;
  const { values, version, observedDesired, ts, ...extra } = obj.value;
  const unknown = Object.keys(extra)[0];
  if (unknown !== undefined) return reject('unknown-property', `a report has "values", "version", "observedDesired" and "ts"; not "${unknown}"`);
  if (version !== undefined && !isCounter(version)) return reject('wrong-type', '"version" must be a non-negative integer');
  if (observedDesired !== undefined && !isCounter(observedDesired)) return reject('wrong-type', '"observedDesired" must be a non-negative integer');
  const timestamp = timestampOf(ts, now);
  if (!timestamp.ok) return timestamp;
  let checked: Values = {};
  if (values !== undefined) {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) return reject('wrong-type', '"values" must be an object');
    const c = checkValues(model, values as Record<string, unknown>);
    if (!c.ok) return c;
    checked = c.value;
  }
  return {
    ok: true,
    value: { timestamp: timestamp.value, values: checked, ...(version !== undefined ? { version } : {}), ...(observedDesired !== undefined ? { observedDesired } : {}) },
  };
}
