import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { OutpostError } from '../../shared/errors.js';

/** Where the hub talks to Kubernetes: credentials, and the namespace of its own namespaced objects (Lease, Secrets). */
export interface KubeContext {
  kc: KubeConfig;
  namespace: string;
}

/** Options of {@link loadKubeContext}. */
export interface LoadKubeContextOptions {
  /** A kubeconfig file; when omitted: in-cluster if KUBERNETES_SERVICE_HOST is set, else the default loading rules. */
  kubeconfig?: string;
  /** The hub's namespace; default: the in-cluster service-account namespace, else `outpost-system`. */
  namespace?: string;
  /** The environment to read (KUBERNETES_SERVICE_HOST); default process.env. Injected by tests. */
  env?: NodeJS.ProcessEnv;
  /** The service-account directory; default /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir?: string;
}

export const DEFAULT_HUB_NAMESPACE = 'outpost-system';
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Loads Kubernetes credentials the way kubectl and in-cluster controllers do. Throws OutpostError
 * BAD_REQUEST naming what is missing, so the hub refuses to start with a clear message instead of
 * failing on its first request.
 */
export function loadKubeContext(opts: LoadKubeContextOptions = {}): KubeContext {
  const env = opts.env ?? process.env;
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const kc = new KubeConfig();
  let source: string;
  try {
    if (opts.kubeconfig) {
      if (!existsSync(opts.kubeconfig)) throw new Error(`the file does not exist`);
      source = `kubeconfig ${opts.kubeconfig}`;
      kc.loadFromFile(opts.kubeconfig);
    } else if (env.KUBERNETES_SERVICE_HOST) {
      source = 'in-cluster service account';
      if (!existsSync(`${saDir}/token`)) throw new Error(`KUBERNETES_SERVICE_HOST is set but ${saDir}/token is missing`);
      kc.loadFromCluster();
    } else {
      source = 'default kubeconfig (KUBECONFIG or ~/.kube/config)';
      // loadFromDefault falls back to http://localhost:8080 when there is no file: refuse instead.
      const files = (env.KUBECONFIG ?? join(homedir(), '.kube', 'config')).split(delimiter).filter((f) => f && existsSync(f));
      if (files.length === 0) throw new Error('no --kubeconfig given, KUBERNETES_SERVICE_HOST is not set, and there is no KUBECONFIG or ~/.kube/config file');
      kc.loadFromFile(files[0]!);
    }
  } catch (err) {
    throw new OutpostError('BAD_REQUEST', `Kubernetes credentials: cannot load ${opts.kubeconfig ? `kubeconfig ${opts.kubeconfig}` : 'the in-cluster or default configuration'}: ${(err as Error).message}`, { cause: err });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    throw new OutpostError('BAD_REQUEST', `Kubernetes credentials: ${source} names no cluster server; pass --kubeconfig FILE, or run in a pod with a service account`);
  }
  return { kc, namespace: opts.namespace ?? inClusterNamespace(saDir) ?? DEFAULT_HUB_NAMESPACE };
}

function inClusterNamespace(saDir: string): string | undefined {
  try {
    return readFileSync(`${saDir}/namespace`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
