import { isIP } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { fieldErrors } from '../../shared/api/validate.js';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import { INSTANCE_ADDRESS_MAX_LENGTH, INSTANCE_ADDRESS_PATTERN } from '../../shared/registry/record-schema.js';
import type { RegisterInput } from './registry-state.js';

/** Body of PUT /v1/registry/services/<service>/instances/<id>. */
export const RegisterBodySchema = Type.Object(
  {
    /** IPv4 or IPv6 literal where the instance listens. */
    address: Type.String({ minLength: 2, maxLength: INSTANCE_ADDRESS_MAX_LENGTH }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** Default tcp. */
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('http'), Type.Literal('https'), Type.Literal('grpc')])),
    metadata: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9._/-]{1,63}$' }), Type.String({ maxLength: 512 }), { additionalProperties: false, maxProperties: 64 })),
    /** 1..1000, default 100: within a nearness group, heavier instances are listed first. */
    weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    /** Heartbeat period such as "10s" (1s..24h). Default 30s. */
    ttl: Type.Optional(Type.String({ minLength: 2, maxLength: 32 })),
  },
  { additionalProperties: false },
);
export type RegisterBody = Static<typeof RegisterBodySchema>;

const check = TypeCompiler.Compile(RegisterBodySchema);
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const INSTANCE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ADDRESS = new RegExp(INSTANCE_ADDRESS_PATTERN);
export const DEFAULT_TTL_MS = 30_000;
const MIN_TTL_MS = 1_000;
const MAX_TTL_MS = 24 * 3_600_000;

function invalid(path: string, message: string): OutpostError {
  return new OutpostError('INVALID', `${path}: ${message}`, { fields: [{ path, message }] });
}

/** Checks the service name and instance id taken from the URL path. */
export function checkNames(service: string, id?: string): void {
  if (!SERVICE_NAME.test(service)) throw invalid('service', `${JSON.stringify(service.slice(0, 80))} is not a DNS label ([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)`);
  if (id !== undefined && !INSTANCE_ID.test(id)) throw invalid('id', `${JSON.stringify(id.slice(0, 140))} is not 1-128 characters of [A-Za-z0-9._:-]`);
}

/** Turns a request body into a registration, or throws INVALID naming every failing field. */
export function parseRegisterBody(service: string, id: string, body: unknown): RegisterInput {
  checkNames(service, id);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('/', 'expected a JSON object with address and port');
  if (!check.Check(body)) {
    const fields = fieldErrors(check, body);
    throw new OutpostError('INVALID', `registration is invalid: ${fields[0] ? `${fields[0].path}: ${fields[0].message}` : 'schema mismatch'}`, { fields });
  }
  if (isIP(body.address) === 0) throw invalid('/address', `${JSON.stringify(body.address)} is not an IPv4 or IPv6 address`);
  if (!ADDRESS.test(body.address)) throw invalid('/address', `${JSON.stringify(body.address)}: an IPv6 zone may only hold letters, digits, ".", "_" and "-"`);
  let ttlMs = DEFAULT_TTL_MS;
  if (body.ttl !== undefined) {
    try {
      ttlMs = parseDuration(body.ttl, 'ttl');
    } catch (err) {
      if (isOutpostError(err)) throw invalid('/ttl', err.message);
      throw err;
    }
    if (ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) throw invalid('/ttl', `${body.ttl} is outside 1s..24h`);
  }
  return {
    service,
    id,
    address: body.address,
    port: body.port,
    protocol: body.protocol ?? 'tcp',
    metadata: body.metadata ?? {},
    weight: body.weight ?? 100,
    health: 'passing',
    lease: { kind: 'ttl', ttlMs },
  };
}
