import { OutpostError } from '../../shared/errors.js';
import type { OriginDigest } from '../../shared/registry/digest.js';
import type { ServiceInstance } from './records.js';
import { httpRequest, type HttpAnswer } from '../link/http-request.js';
import { HubUrlRing } from '../link/hub-urls.js';

/** The hub's registry endpoints for agents (README "Global view"), with the node credential. */
export interface HubRegistryApi {
  /** Per-origin digests of this node's unit as the hub holds it. */
  digest(signal?: AbortSignal): Promise<Record<string, OriginDigest>>;
  /** Instances of `service` in units other than this node's. */
  service(name: string, signal?: AbortSignal): Promise<ServiceInstance[]>;
}

/**
 * Over HTTP(S) to the hub; every call is bounded by `timeoutMs` (default 2 000). With several hub
 * replicas (comma-separated URLs) an unreachable one is skipped for the next, within that bound.
 */
export function httpHubRegistryApi(options: { hubUrl: string; credential: string; timeoutMs?: number }): HubRegistryApi {
  const hubs = new HubUrlRing(options.hubUrl);
  const get = async <T>(path: string, signal?: AbortSignal): Promise<T> => {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 2_000);
    let res: HttpAnswer | undefined;
    for (let attempt = 0; !res; attempt++) {
      try {
        res = await httpRequest(`${hubs.current()}${path}`, { headers: { Authorization: `Bearer ${options.credential}` }, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      } catch (cause) {
        if (attempt + 1 >= hubs.size || timeout.aborted || signal?.aborted) throw new OutpostError('UNAVAILABLE', `hub unreachable for ${path}: ${(cause as Error).message}`, { cause });
        hubs.next();
      }
    }
    const text = res.text;
    if (!res.ok) throw new OutpostError(res.status >= 500 ? 'UNAVAILABLE' : 'BAD_REQUEST', `hub answered ${res.status} for ${path}: ${text.slice(0, 300)}`);
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new OutpostError('PROTOCOL', `hub answer for ${path} is not JSON`, { cause });
    }
  };
  return {
    digest: async (signal) => (await get<{ origins: Record<string, OriginDigest> }>('/agent/v1/registry/digest', signal)).origins ?? {},
    service: async (name, signal) => {
      const body = await get<{ instances?: unknown }>(`/agent/v1/services/${encodeURIComponent(name)}`, signal);
      if (!Array.isArray(body.instances)) throw new OutpostError('PROTOCOL', `hub answer for service ${name} has no instances list`);
      return body.instances as ServiceInstance[];
    },
  };
}
