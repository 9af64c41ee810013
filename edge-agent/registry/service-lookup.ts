import type { InstanceView, Registry } from './records.js';

/**
 * How the HTTP API and DNS answer a lookup. The local registry answers for this node and unit;
 * a wrapper (hub-lookup.ts, the hub's global view) may add other units' instances (nearness
 * `remote`) after them. Must resolve even with the hub gone (the wrapper's cache or nothing).
 */
export type ServiceLookup = (service: string, options: { unit?: string; all?: boolean }) => Promise<InstanceView[]>;

export function localLookup(registry: Registry): ServiceLookup {
  return (service, options) => Promise.resolve(registry.lookup(service, options));
}
