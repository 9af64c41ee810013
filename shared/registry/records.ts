/**
 * The local service registry's data model (README "Local service registry").
 *
 * Every record has exactly one writer: its origin node. A record is versioned by that origin as
 * (incarnation, counter): the incarnation grows at every agent start, the counter at every change
 * the origin makes within one incarnation. Replicas keep, per key, the record with the highest
 * version and never compare wall clocks. A deletion is a tombstone (a record without `instance`)
 * kept long enough to outlast a partition, so that an old copy arriving later cannot resurrect it.
 */

/** How an instance stays registered. */
export type Lease =
  /** The registrant heartbeats at least every ttlMs; a silent instance turns critical, then is removed. */
  | { kind: 'ttl'; ttlMs: number }
  /** Registered by the agent for an EdgeApp instance with spec.service; health follows its readiness. */
  | { kind: 'process'; instance: string };

export type Health = 'passing' | 'critical';

export type ServiceProtocol = 'tcp' | 'udp' | 'http' | 'https' | 'grpc';

/** One registered instance of a service, as registrants and lookups see it. */
export interface ServiceInstance {
  /** A DNS label: [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])? */
  service: string;
  /** Unique within the service (1-128 chars of [A-Za-z0-9._:-]). */
  id: string;
  /** The origin node: the only node that may change this record. */
  node: string;
  unit: string;
  /** IPv4 or IPv6 literal. */
  address: string;
  port: number;
  protocol: ServiceProtocol;
  metadata: Record<string, string>;
  /** 1..1000, default 100. */
  weight: number;
  /** As the origin sees it (TTL heartbeats, readiness). Replicas may overlay `critical` (suspected origin). */
  health: Health;
  lease: Lease;
}

/** The origin's version of a record. Ordered by incarnation, then counter. */
export interface RecordVersion {
  incarnation: number;
  counter: number;
}

/** A record as replicated: a live instance, or a tombstone when `instance` is absent. */
export interface RegistryRecord {
  /** `${service}/${id}` */
  key: string;
  origin: string;
  version: RecordVersion;
  instance?: ServiceInstance;
}

export function recordKey(service: string, id: string): string {
  return `${service}/${id}`;
}

/** <0 when a is older than b, 0 when equal, >0 when newer. */
export function compareVersions(a: RecordVersion, b: RecordVersion): number {
  return a.incarnation !== b.incarnation ? a.incarnation - b.incarnation : a.counter - b.counter;
}

/**
 * Whether `incoming` replaces `held` (the replication merge rule): only a strictly newer version
 * from the same origin wins. A record whose origin differs from the held one's is a key collision
 * between two nodes: the lexically smaller origin keeps the key, on every replica alike.
 */
export function supersedes(incoming: RegistryRecord, held: RegistryRecord | undefined): boolean {
  if (!held) return true;
  if (incoming.origin !== held.origin) return incoming.origin < held.origin;
  return compareVersions(incoming.version, held.version) > 0;
}

/** Where an instance is, relative to the node answering a lookup: answers are ordered by this. */
export type Nearness = 'node' | 'unit' | 'remote';

/** One instance in a lookup answer. */
export interface InstanceView extends ServiceInstance {
  nearness: Nearness;
  /** True when this node suspects the origin node is unreachable (then health is critical). */
  originSuspected?: boolean;
  /** The record's version as this node holds it (watchers can check that versions only grow). */
  version?: RecordVersion;
}

/**
 * The registry state every other part (HTTP API, DNS, peer replication, hub reports) works with.
 * Implemented by RegistryState (edge-agent/registry/registry-state.ts). Instances of other units
 * (nearness `remote`) are added by a wrapper over lookups (edge-agent/registry/hub-lookup.ts, from
 * the hub's global view), so RegistryState answers for its own node and unit only.
 */
export interface Registry {
  readonly node: string;
  readonly unit: string;
  /** This agent's incarnation (grows at every start; persisted). */
  readonly incarnation: number;
  /** Grows by one at every change visible to lookups (local or replicated); blocking watches wait on it. */
  index(): number;

  // ---- writes by this node (own records: counter+1, persisted, then listeners)
  register(input: Omit<ServiceInstance, 'node' | 'unit' | 'health'> & { health?: Health }): RegistryRecord;
  deregister(service: string, id: string): RegistryRecord | undefined;
  setHealth(service: string, id: string, health: Health): RegistryRecord | undefined;

  // ---- replication
  /** Applies records from peers (or the hub); returns those that changed something here. */
  mergeRemote(records: readonly RegistryRecord[]): RegistryRecord[];
  /** Marks every record of `origin` critical in lookups (suspected), or lifts that overlay. */
  setOriginSuspected(origin: string, suspected: boolean): void;
  /** All records held (live and tombstones), own and replicated. */
  records(): Iterable<RegistryRecord>;
  recordsOf(origin: string): RegistryRecord[];
  get(key: string): RegistryRecord | undefined;

  // ---- lookups
  /** Instances of a service, nearest first (same node, same unit, other units); healthy only unless all. */
  lookup(service: string, options?: { unit?: string; all?: boolean }): InstanceView[];
  services(): string[];

  /** Called after each change with the records that changed and the new index. Returns an unsubscribe. */
  onChange(listener: (changed: readonly RegistryRecord[], index: number) => void): () => void;
}
