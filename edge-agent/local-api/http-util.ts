import type { IncomingMessage, ServerResponse } from 'node:http';
import { OutpostError, toErrorBody } from '../../shared/errors.js';
import { readBody } from '../../shared/http-body.js';

/**
 * A handler the local API server tries in order: it returns true when it took the request (and
 * answers it, possibly later), false to let the next one try.
 */
export type LocalRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean;

/** Largest request body the local API reads. */
export const MAX_LOCAL_BODY_BYTES = 64 * 1024;

export async function readJsonBody(req: IncomingMessage, limit = MAX_LOCAL_BODY_BYTES): Promise<unknown> {
  const text = await readBody(req, limit);
  if (text.trim() === '') throw new OutpostError('BAD_REQUEST', 'request body is empty: expected a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new OutpostError('INVALID_JSON', `request body is not valid JSON: ${(cause as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) });
  res.end(text);
}

/** Answers with the error's code, message and field paths; anything else is a 500 without details. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, err instanceof OutpostError ? err.status : 500, toErrorBody(err));
}
