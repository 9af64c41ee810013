import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { OutpostError, fromErrorBody, isOutpostError, type ErrorBody } from '../../shared/errors.js';
import { httpRequest, type HttpAnswer } from './http-request.js';
import { parseHubUrls } from './hub-urls.js';

/** What an agent keeps in `<data>/credential.json` (mode 0600) after joining. */
export interface NodeCredential {
  hub: string;
  node: string;
  unit: string;
  credential: string;
}

export function readCredential(path: string): NodeCredential | undefined {
  if (!existsSync(path)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new OutpostError('BAD_REQUEST', `credential file ${path} is not valid JSON; restore it or delete the node and join again`, { cause });
  }
  const v = value as Partial<NodeCredential>;
  if (typeof v.node !== 'string' || typeof v.credential !== 'string' || typeof v.unit !== 'string' || typeof v.hub !== 'string') {
    throw new OutpostError('BAD_REQUEST', `credential file ${path} lacks node, unit, hub or credential`);
  }
  return v as NodeCredential;
}

/** Atomic write (temp file + rename): a crash never leaves a half-written credential. */
export function writeCredential(path: string, cred: NodeCredential): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(cred, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * Presents a join token once and returns the node's credential. Throws OutpostError with the
 * hub's code for refusals (bad or expired token: not worth retrying) and UNAVAILABLE when the hub
 * cannot be reached (worth retrying).
 */
export async function joinHub(hubUrl: string, token: string, node: string, labels: Record<string, string>, signal?: AbortSignal): Promise<NodeCredential> {
  // Several replicas (comma-separated): the first that answers decides; unreachable ones are skipped.
  const urls = parseHubUrls(hubUrl);
  let unreachable: unknown;
  for (const url of urls) {
    try {
      return { ...(await joinOne(url, token, node, labels, signal)), hub: hubUrl };
    } catch (err) {
      if (!isOutpostError(err, 'UNAVAILABLE')) throw err;
      unreachable = err;
    }
  }
  throw unreachable;
}

async function joinOne(hubUrl: string, token: string, node: string, labels: Record<string, string>, signal?: AbortSignal): Promise<NodeCredential> {
  let res: HttpAnswer;
  try {
    res = await httpRequest(`${hubUrl.replace(/\/$/, '')}/agent/v1/join`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token, node, labels }),
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(15_000)]) : AbortSignal.timeout(15_000),
    });
  } catch (cause) {
    throw new OutpostError('UNAVAILABLE', `cannot reach the hub at ${hubUrl}: ${(cause as Error).message}`, { cause });
  }
  let body: Partial<NodeCredential> & Partial<ErrorBody> = {};
  try {
    body = JSON.parse(res.text) as Partial<NodeCredential> & Partial<ErrorBody>;
  } catch { /* not JSON: the status says what happened */ }
  if (!res.ok) throw fromErrorBody({ code: body.code ?? 'OUTPOST_INTERNAL', message: body.message ?? `HTTP ${res.status}` } as ErrorBody, res.status);
  if (!body.credential || !body.unit || !body.node) throw new OutpostError('PROTOCOL', 'hub answered the join without a credential');
  return { hub: hubUrl, node: body.node, unit: body.unit, credential: body.credential };
}
