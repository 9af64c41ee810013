import type { IncomingMessage } from 'node:http';
import { fromErrorBody, OutpostError, type ErrorBody } from '../shared/errors.js';
import { RELAY_PROTOCOL } from '../shared/tunnel/framed-socket.js';

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

/**
 * A refusal of the `outpost-stream` upgrade. A plain 400 (not our error body) comes from a hub
 * older than this CLI (it speaks only WebSocket there) or a proxy that passes only WebSocket.
 */
export function framedRefusalError(status: number, body: Buffer): OutpostError {
  const hint = status === 400 ? ` to the ${RELAY_PROTOCOL} upgrade: is the hub older than this CLI, or is there a proxy that passes only WebSocket upgrades? (then set OUTPOST_TUNNEL_PROTOCOL=websocket)` : '';
  return refusalError(status, body, `hub answered HTTP ${status}${hint}`);
}

/** A 101 answer that switched to another protocol than `outpost-stream`. */
export function notFramedError(answeredUpgrade: string | undefined): OutpostError {
  return new OutpostError('UNAVAILABLE', `the hub does not speak ${RELAY_PROTOCOL} (answered Upgrade: ${answeredUpgrade ?? 'none'}): is it an older version? OUTPOST_TUNNEL_PROTOCOL=websocket speaks WebSocket instead`);
}

/** Reads a refusal answer (any status but 101) to its end; `toError` as refusalError. */
export function readRefusal(res: IncomingMessage, toError: (status: number, body: Buffer) => OutpostError = refusalError): Promise<OutpostError> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(toError(res.statusCode ?? 0, Buffer.concat(chunks))));
    res.on('error', () => resolve(new OutpostError('UNAVAILABLE', `hub answered HTTP ${res.statusCode ?? 0}`)));
  });
}
