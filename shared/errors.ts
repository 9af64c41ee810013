/**
 * The one registry of Outpost errors. Every error has a stable code (never rename one: the CLI,
 * tests and operators' scripts match on it) and the HTTP status it maps to.
 */
export const ErrorCodes = {
  BAD_REQUEST: { code: 'OUTPOST_BAD_REQUEST', status: 400 },
  INVALID_JSON: { code: 'OUTPOST_INVALID_JSON', status: 400 },
  INVALID_YAML: { code: 'OUTPOST_INVALID_YAML', status: 400 },
  UNAUTHORIZED: { code: 'OUTPOST_UNAUTHORIZED', status: 401 },
  FORBIDDEN: { code: 'OUTPOST_FORBIDDEN', status: 403 },
  NOT_FOUND: { code: 'OUTPOST_NOT_FOUND', status: 404 },
  UNKNOWN_KIND: { code: 'OUTPOST_UNKNOWN_KIND', status: 404 },
  METHOD_NOT_ALLOWED: { code: 'OUTPOST_METHOD_NOT_ALLOWED', status: 405 },
  ALREADY_EXISTS: { code: 'OUTPOST_ALREADY_EXISTS', status: 409 },
  CONFLICT: { code: 'OUTPOST_CONFLICT', status: 409 },
  REVISION_TOO_OLD: { code: 'OUTPOST_REVISION_TOO_OLD', status: 410 },
  PAYLOAD_TOO_LARGE: { code: 'OUTPOST_PAYLOAD_TOO_LARGE', status: 413 },
  INVALID: { code: 'OUTPOST_INVALID', status: 422 },
  TOKEN_INVALID: { code: 'OUTPOST_TOKEN_INVALID', status: 401 },
  TOKEN_EXPIRED: { code: 'OUTPOST_TOKEN_EXPIRED', status: 401 },
  TOKEN_USED_UP: { code: 'OUTPOST_TOKEN_USED_UP', status: 401 },
  NODE_EXISTS: { code: 'OUTPOST_NODE_EXISTS', status: 409 },
  PROTOCOL: { code: 'OUTPOST_PROTOCOL', status: 400 },
  UNAVAILABLE: { code: 'OUTPOST_UNAVAILABLE', status: 503 },
  INTERNAL: { code: 'OUTPOST_INTERNAL', status: 500 },
  /** Tunnel (issue 8): the node has no session with the hub. */
  NODE_DISCONNECTED: { code: 'OUTPOST_NODE_DISCONNECTED', status: 503 },
  /** Tunnel: too many open streams on the node. */
  STREAM_LIMIT: { code: 'OUTPOST_STREAM_LIMIT', status: 429 },
  /** Tunnel: the other end closed the stream before it finished. */
  CANCELLED: { code: 'OUTPOST_CANCELLED', status: 499 },
} as const;

export type ErrorName = keyof typeof ErrorCodes;
export type ErrorCode = (typeof ErrorCodes)[ErrorName]['code'];

/** One failing field of a validation error. `path` is a JSON pointer such as `/spec/replicasPerUnit`. */
export interface FieldError {
  path: string;
  message: string;
}

/** The JSON body of every HTTP error response and of protocol `error` frames. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  fields?: FieldError[];
}

export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly fields: FieldError[] | undefined;

  constructor(name: ErrorName, message: string, options: { cause?: unknown; fields?: FieldError[] } = {}) {
    super(message, { cause: options.cause });
    this.name = 'OutpostError';
    this.code = ErrorCodes[name].code;
    this.status = ErrorCodes[name].status;
    this.fields = options.fields;
  }

  toBody(): ErrorBody {
    return this.fields ? { code: this.code, message: this.message, fields: this.fields } : { code: this.code, message: this.message };
  }
}

export function isOutpostError(err: unknown, name?: ErrorName): err is OutpostError {
  return err instanceof OutpostError && (name === undefined || err.code === ErrorCodes[name].code);
}

/** Turns anything thrown into an error body; unknown errors become INTERNAL without leaking details. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof OutpostError) return err.toBody();
  return { code: ErrorCodes.INTERNAL.code, message: 'internal error' };
}

/** Rebuilds an OutpostError from a body received over HTTP or the wire (used by clients). */
export function fromErrorBody(body: ErrorBody, fallbackStatus: number): OutpostError {
  const entry = Object.entries(ErrorCodes).find(([, v]) => v.code === body.code);
  const err = new OutpostError((entry?.[0] ?? 'INTERNAL') as ErrorName, body.message, body.fields ? { fields: body.fields } : {});
  if (!entry) Object.defineProperty(err, 'status', { value: fallbackStatus });
  return err;
}
