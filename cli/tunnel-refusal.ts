import type { IncomingMessage } from 'node:http';
import { fromErrorBody, OutpostError, type ErrorBody } from '../shared/errors.js';

/** The hub's refusal of a tunnel stream, from its JSON error body; `plain` when the body is not one. */
export function refusalError(status: number, body: Buffer, plain = `hub answered HTTP ${status}`): OutpostError {
  let parsed: Partial<ErrorBody> | undefined;
  try {
    parsed = JSON.parse(body.toString('utf8')) as Partial<ErrorBody>;
  } catch {
    parsed = undefined;
  }
  return fromErrorBody({ code: parsed?.code ?? 'OUTPOST_INTERNAL', message: parsed?.message ?? plain } as ErrorBody, status);
}

/** Reads a refusal answer (any status but 101) to its end. */
export function readRefusal(res: IncomingMessage): Promise<OutpostError> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(refusalError(res.statusCode ?? 0, Buffer.concat(chunks))));
    res.on('error', () => resolve(new OutpostError('UNAVAILABLE', `hub answered HTTP ${res.statusCode ?? 0}`)));
  });
}
