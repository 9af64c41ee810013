import type { IncomingMessage } from 'node:http';
import { OutpostError } from './errors.js';

/** Reads a request body as UTF-8, refusing it (PAYLOAD_TOO_LARGE) past `limit` bytes, declared or sent. */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new OutpostError('PAYLOAD_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new OutpostError('PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
