import { ApiException } from '@kubernetes/client-node';
import { OutpostError } from '../../shared/errors.js';

/**
 * Maps a failed API server request to an OutpostError: 404 NOT_FOUND, 409 AlreadyExists
 * ALREADY_EXISTS, other 409 CONFLICT (stale resourceVersion), 403 FORBIDDEN (RBAC), anything else
 * UNAVAILABLE. The API server's own message is kept; `what` names the request.
 */
export function kubeError(err: unknown, what: string): OutpostError {
  if (err instanceof OutpostError) return err;
  if (err instanceof ApiException) {
    const status = statusBody(err.body);
    const detail = status.message ?? `HTTP ${err.code}`;
    if (err.code === 404) return new OutpostError('NOT_FOUND', `${what}: ${detail}`, { cause: err });
    if (err.code === 409) return new OutpostError(status.reason === 'AlreadyExists' ? 'ALREADY_EXISTS' : 'CONFLICT', `${what}: ${detail}`, { cause: err });
    if (err.code === 403) return new OutpostError('FORBIDDEN', `${what}: the API server refused (RBAC?): ${detail}`, { cause: err });
    return new OutpostError('UNAVAILABLE', `${what}: API server answered ${err.code}: ${detail}`, { cause: err });
  }
  return new OutpostError('UNAVAILABLE', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function statusBody(body: unknown): { reason?: string; message?: string } {
  let b: unknown = body;
  if (typeof body === 'string') {
    try {
      b = JSON.parse(body);
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  if (b && typeof b === 'object') {
    const o = b as { reason?: unknown; message?: unknown };
    return { ...(typeof o.reason === 'string' ? { reason: o.reason } : {}), ...(typeof o.message === 'string' ? { message: o.message } : {}) };
  }
  return {};
}
