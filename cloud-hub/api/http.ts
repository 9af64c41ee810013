import type { IncomingMessage, ServerResponse } from 'node:http';
import { OutpostError, toErrorBody } from '../../shared/errors.js';
import { parseManifests } from '../../shared/yaml.js';
import { readBody as readBodyUpTo } from '../../shared/http-body.js';

/** Largest request body the API accepts. */
export const MAX_BODY_BYTES = 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  return readBodyUpTo(req, limit);
}

/** Parses a JSON body, or YAML when the content type says so. Exactly one document. */
export async function readObjectBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (text.trim() === '') throw new OutpostError('BAD_REQUEST', 'request body is empty');
  if ((req.headers['content-type'] ?? '').includes('yaml')) {
    const docs = parseManifests(text, 'request body');
    if (docs.length !== 1) throw new OutpostError('BAD_REQUEST', `expected one YAML document, got ${docs.length}`);
    return docs[0];
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new OutpostError('INVALID_JSON', `request body is not valid JSON: ${(cause as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): number {
  const status = err instanceof OutpostError ? err.status : 500;
  if (res.headersSent) {
    res.end();
  } else {
    sendJson(res, status, toErrorBody(err));
  }
  return status;
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  return auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
}
