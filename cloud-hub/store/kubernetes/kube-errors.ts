import { OutpostError, type FieldError } from '../../../shared/errors.js';
import type { KubeResponse } from './kube-http.js';

/** The parts of a Kubernetes `Status` body the store reads. */
interface KubeStatus {
  message?: string;
  reason?: string;
  details?: { causes?: { field?: string; message?: string; reason?: string }[] };
}

export function kubeStatus(body: unknown): KubeStatus {
  if (typeof body === 'string') return { message: body.slice(0, 500) };
  return body && typeof body === 'object' ? (body as KubeStatus) : {};
}

/** 429 and 5xx answers are the API server being busy or restarting: worth retrying. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * Maps an API server error answer to the store's error: 404 NOT_FOUND, 409 ALREADY_EXISTS or
 * CONFLICT, 410 REVISION_TOO_OLD, 422 INVALID with the failing fields as JSON pointers, 401/403
 * UNAUTHORIZED/FORBIDDEN (credentials, RBAC), anything else UNAVAILABLE. `what` names the object.
 */
export function kubeError(res: KubeResponse, what: string): OutpostError {
  const s = kubeStatus(res.body);
  const detail = s.message ?? `HTTP ${res.status}`;
  switch (res.status) {
    case 400:
      return new OutpostError('BAD_REQUEST', `${what}: the API server refused the request: ${detail}`);
    case 401:
      return new OutpostError('UNAUTHORIZED', `${what}: the API server did not accept the hub's credentials: ${detail}`);
    case 403:
      return new OutpostError('FORBIDDEN', `${what}: the API server refused (RBAC: see deploy/ for the hub's ClusterRole): ${detail}`);
    case 404:
      return new OutpostError('NOT_FOUND', `${what} not found`);
    case 409:
      return s.reason === 'AlreadyExists'
        ? new OutpostError('ALREADY_EXISTS', `${what} already exists`)
        : new OutpostError('CONFLICT', `${what} was modified: ${detail}; get it again and retry`);
    case 410:
      return new OutpostError('REVISION_TOO_OLD', `${what}: ${detail} (list again, then watch from the list's revision)`);
    case 422:
      return new OutpostError('INVALID', `${what} is invalid: ${detail}`, { fields: fieldErrors(s) });
    default:
      return new OutpostError('UNAVAILABLE', `${what}: the API server answered ${res.status}: ${detail}`);
  }
}

/** `spec.replicasPerUnit` (Kubernetes' field path) becomes `/spec/replicasPerUnit` (the hub's JSON pointer). */
export function fieldPathToPointer(field: string): string {
  const parts = field.replace(/\[(\d+)\]/g, '.$1').split('.').filter(Boolean);
  return `/${parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

function fieldErrors(s: KubeStatus): FieldError[] {
  const causes = s.details?.causes ?? [];
  const fields = causes.filter((c) => c.field).map((c) => ({ path: fieldPathToPointer(c.field!), message: c.message ?? c.reason ?? 'invalid' }));
  return fields.length > 0 ? fields : [{ path: '/', message: s.message ?? 'invalid' }];
}
