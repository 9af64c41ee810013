import { API_GROUP } from '../../shared/api/meta.js';
import { KINDS } from '../../shared/api/kinds.js';

/** One rbac.authorization.k8s.io/v1 PolicyRule. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * The cluster-wide API access the hub needs on the Kubernetes store (deploy/hub ClusterRole):
 * every Outpost kind with the requests cloud-hub/store/kubernetes makes (GET, list and watch,
 * POST, PUT with a resourceVersion precondition, DELETE; no PATCH), and PUT on its status
 * subresource. A new kind in KINDS is a new resource here, and a unit test holds deploy/hub to it.
 */
export function hubClusterRules(): PolicyRule[] {
  return [
    { apiGroups: [API_GROUP], resources: KINDS.map((k) => k.plural), verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
    { apiGroups: [API_GROUP], resources: KINDS.map((k) => `${k.plural}/status`), verbs: ['update'] },
  ];
}

/**
 * The access the hub needs in its own namespace only (deploy/hub Role): the leader-election Lease
 * (read, create, renew by update) and the Secrets holding join tokens and node credentials
 * (watched by every replica, written on join, rotation and revocation).
 */
export function hubNamespaceRules(): PolicyRule[] {
  return [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'] },
  ];
}
