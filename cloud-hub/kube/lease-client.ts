import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { OutpostError } from '../../shared/errors.js';
import type { LeaseClient, LeaseRecord, ObservedLease } from './leader-election.js';
import { kubeError } from './kube-api-errors.js';

export interface KubeLeaseClientOptions {
  kc: KubeConfig;
  namespace: string;
  /** Lease name. Default `outpost-hub-leader`. */
  name?: string;
  /** Each request is abandoned after this long, ms. Default 4 000 (shorter than the renew deadline). */
  requestTimeoutMs?: number;
}

/** The election's LeaseClient on a real coordination.k8s.io/v1 Lease in the hub namespace. */
export class KubeLeaseClient implements LeaseClient {
  private readonly api: CoordinationV1Api;
  readonly name: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: KubeLeaseClientOptions) {
    this.api = options.kc.makeApiClient(CoordinationV1Api);
    this.name = options.name ?? 'outpost-hub-leader';
    this.timeoutMs = options.requestTimeoutMs ?? 4_000;
  }

  async get(): Promise<ObservedLease | undefined> {
    try {
      return fromLease(await this.bounded(this.api.readNamespacedLease({ name: this.name, namespace: this.options.namespace }), 'read'));
    } catch (err) {
      if (err instanceof OutpostError && err.status === 404) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord): Promise<ObservedLease> {
    const body: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.options.namespace, labels: { 'app.kubernetes.io/name': 'outpost-hub' } }, spec: toSpec(record) };
    return fromLease(await this.bounded(this.api.createNamespacedLease({ namespace: this.options.namespace, body }), 'create'));
  }

  async update(record: LeaseRecord, resourceVersion: string): Promise<ObservedLease> {
    const body: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.options.namespace, resourceVersion, labels: { 'app.kubernetes.io/name': 'outpost-hub' } }, spec: toSpec(record) };
    return fromLease(await this.bounded(this.api.replaceNamespacedLease({ name: this.name, namespace: this.options.namespace, body }), 'update'));
  }

  /** A hung request must not hold the election loop: it is abandoned (the watchdog covers a leader). */
  private async bounded<T>(request: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        request.catch((err: unknown) => { throw kubeError(err, `Lease ${this.options.namespace}/${this.name} ${what}`); }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new OutpostError('UNAVAILABLE', `Lease ${what} took longer than ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      request.catch(() => undefined);
    }
  }
}

function toSpec(r: LeaseRecord): NonNullable<V1Lease['spec']> {
  return {
    holderIdentity: r.holderIdentity,
    leaseDurationSeconds: r.leaseDurationSeconds,
    leaseTransitions: r.leaseTransitions,
    ...(r.acquireTime === undefined ? {} : { acquireTime: new V1MicroTime(r.acquireTime) }),
    ...(r.renewTime === undefined ? {} : { renewTime: new V1MicroTime(r.renewTime) }),
  };
}

function fromLease(lease: V1Lease): ObservedLease {
  const s = lease.spec ?? {};
  const time = (d: Date | undefined) => (d === undefined ? undefined : new Date(d).getTime());
  const acquireTime = time(s.acquireTime);
  const renewTime = time(s.renewTime);
  return {
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    record: {
      holderIdentity: s.holderIdentity ?? '',
      leaseDurationSeconds: s.leaseDurationSeconds ?? 15,
      leaseTransitions: s.leaseTransitions ?? 0,
      ...(acquireTime === undefined ? {} : { acquireTime }),
      ...(renewTime === undefined ? {} : { renewTime }),
    },
  };
}
