import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CoreV1Api } from '@kubernetes/client-node';
import { systemClock } from '../../shared/clock.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import type { Component } from '../../shared/lifecycle.js';
import type { Logger } from '../../shared/logger.js';
import { newSecret } from '../../shared/secrets.js';
import type { Store } from '../store/store.js';
import { loadKubeContext, type KubeContext } from './kube-context.js';
import { kubeError } from './kube-api-errors.js';
import { KubeSecrets } from './kube-secrets.js';
import { LeaderElector, type LeaderElectionOptions } from './leader-election.js';
import { KubeLeaseClient } from './lease-client.js';
import { LeaderWork } from './leader-work.js';

/** `outpost hub --store kubernetes` settings (HubOptions.store). */
export interface KubernetesStoreOptions {
  type: 'kubernetes';
  /** A kubeconfig file; default in-cluster, else KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  /** The hub's namespace (Lease, Secrets); default the service-account namespace, else outpost-system. */
  namespace?: string;
}

/** The default replica identity: unique per process, readable in `kubectl get lease`. */
export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}`;
}

/** What Kubernetes mode gives the hub in place of its SQLite parts. */
export interface ReplicaMode {
  kube: KubeContext;
  replicaId: string;
  store: Store;
  secrets: KubeSecrets;
  adminToken: string;
  isLeader(): boolean;
  /** The component that campaigns for the Lease and runs `build()`'s components while leading; start it last. */
  election(build: () => Component[]): Component;
  close(): Promise<void>;
}

/**
 * Opens Kubernetes mode: credentials, a check that the hub namespace exists, the shared admin token
 * (a Secret, so every replica behind the load balancer accepts the same one), the KubernetesStore,
 * the credential Secrets and the leader elector (not started).
 */
export async function openReplicaMode(
  options: KubernetesStoreOptions & { replicaId: string; adminTokenFile: string; leaderElection?: Omit<LeaderElectionOptions, 'identity'> },
  log: Logger,
): Promise<ReplicaMode> {
  const kube = loadKubeContext({ ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}), ...(options.namespace ? { namespace: options.namespace } : {}) });
  await checkNamespace(kube);
  const adminToken = await sharedAdminToken(kube, options.adminTokenFile);
  const store = await openKubernetesStore(kube, log.child({ component: 'store' }));
  let secrets: KubeSecrets;
  try {
    secrets = await KubeSecrets.open({ kube, log: log.child({ component: 'secrets' }) });
  } catch (err) {
    await store.close();
    throw err;
  }
  const electionLog = log.child({ component: 'leader-election', replica: options.replicaId });
  let build: () => Component[] = () => [];
  const leaderWork = new LeaderWork({ build: () => build(), log: electionLog });
  const elector = new LeaderElector(
    {
      client: new KubeLeaseClient({ kc: kube.kc, namespace: kube.namespace }),
      clock: systemClock,
      log: electionLog,
      onStartedLeading: () => leaderWork.elected(),
      onStoppedLeading: () => leaderWork.stop(),
      onLeaderChanged: (holder) => electionLog.info({ leader: holder || '(none)' }, 'leader observed'),
    },
    { identity: options.replicaId, ...options.leaderElection },
  );
  return {
    kube, replicaId: options.replicaId, store, secrets, adminToken,
    isLeader: () => elector.isLeader,
    election(b) {
      build = b;
      return {
        name: 'leader-election',
        start: async () => elector.start(),
        // Stops leader-only work, then releases the Lease so another replica takes over at once.
        stop: async () => { await elector.stop(); await leaderWork.stop(); },
      };
    },
    async close() {
      await secrets.close();
    },
  };
}

/** The KubernetesStore, loaded lazily so SQLite mode never imports it. */
async function openKubernetesStore(kube: KubeContext, log: Logger): Promise<Store> {
  const { KubernetesStore } = await import('../store/kubernetes/kubernetes-store.js');
  return KubernetesStore.open({ kube, log });
}

/** A missing namespace would fail every Lease and Secret request: refuse to start instead. */
async function checkNamespace(kube: KubeContext): Promise<void> {
  try {
    await kube.kc.makeApiClient(CoreV1Api).readNamespace({ name: kube.namespace });
  } catch (err) {
    const e = kubeError(err, `namespace ${kube.namespace}`);
    if (e.status === 403) return; // RBAC limited to the namespace: the first Lease request tells
    if (e.status === 404) {
      throw new OutpostError('BAD_REQUEST', `the hub namespace "${kube.namespace}" does not exist: create it (kubectl create namespace ${kube.namespace}, or apply deploy/), or pass --namespace`);
    }
    throw new OutpostError('UNAVAILABLE', `cannot reach the Kubernetes API server at ${kube.kc.getCurrentCluster()?.server}: ${e.message}`, { cause: err });
  }
}

const ADMIN_SECRET = 'outpost-hub-admin-token';

/**
 * One admin token for all replicas, in Secret outpost-hub-admin-token (key `token`), created by the
 * first replica; also written to the replica's `<data>/admin-token` for a CLI on that machine.
 */
async function sharedAdminToken(kube: KubeContext, file: string): Promise<string> {
  const api = kube.kc.makeApiClient(CoreV1Api);
  const read = async (): Promise<string | undefined> => {
    try {
      const s = await api.readNamespacedSecret({ name: ADMIN_SECRET, namespace: kube.namespace });
      const v = s.data?.token;
      return v ? Buffer.from(v, 'base64').toString('utf8') : undefined;
    } catch (err) {
      const e = kubeError(err, `Secret ${kube.namespace}/${ADMIN_SECRET}`);
      if (isOutpostError(e, 'NOT_FOUND')) return undefined;
      throw e;
    }
  };
  let token = await read();
  if (!token) {
    const fresh = `adm_${newSecret()}`;
    try {
      await api.createNamespacedSecret({ namespace: kube.namespace, body: { metadata: { name: ADMIN_SECRET, labels: { 'app.kubernetes.io/managed-by': 'outpost-hub', 'outpost.dev/secret': 'admin-token' } }, type: 'Opaque', stringData: { token: fresh } } });
      token = fresh;
    } catch (err) {
      const e = kubeError(err, `create Secret ${kube.namespace}/${ADMIN_SECRET}`);
      if (!isOutpostError(e, 'ALREADY_EXISTS')) throw e;
      token = await read(); // another replica created it first
    }
  }
  if (!token || token.length < 16) throw new OutpostError('BAD_REQUEST', `Secret ${kube.namespace}/${ADMIN_SECRET} has no usable "token" key (at least 16 characters)`);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}
