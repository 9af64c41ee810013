import type { KindName } from '../../shared/api/kinds.js';

/** One `kubectl get` column of a CRD (apiextensions.k8s.io/v1 CustomResourceColumnDefinition). */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 0 shows in `kubectl get`; higher only with `-o wide`. */
  priority?: number;
}

/** A CRD that declares columns loses kubectl's default AGE column unless it lists one itself. */
const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

/** The `kubectl get` columns of each kind, chosen to answer "is it working, and where". */
export const PRINTER_COLUMNS: Record<KindName, PrinterColumn[]> = {
  NodeUnit: [
    { name: 'Ready', type: 'integer', jsonPath: '.status.nodes.ready', description: 'member nodes with a live session' },
    { name: 'Nodes', type: 'integer', jsonPath: '.status.nodes.total', description: 'member nodes' },
    { name: 'Disconnected', type: 'integer', jsonPath: '.status.nodes.disconnected' },
    { name: 'Down', type: 'integer', jsonPath: '.status.nodes.down', priority: 1 },
    { name: 'Reschedule-After', type: 'string', jsonPath: '.spec.autonomy.rescheduleAfter', description: 'autonomy: how long a node may be disconnected before its work moves (empty: never)' },
    { name: 'Peer-Health', type: 'boolean', jsonPath: '.spec.autonomy.peerHealth', priority: 1 },
    { name: 'Cordon', type: 'boolean', jsonPath: '.spec.cordon', priority: 1 },
    AGE,
  ],
  EdgeNode: [
    { name: 'Unit', type: 'string', jsonPath: '.spec.unit' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Version', type: 'string', jsonPath: '.status.agentVersion' },
    { name: 'Last-Seen', type: 'date', jsonPath: '.status.lastSeen' },
    { name: 'Applied', type: 'integer', jsonPath: '.status.appliedRevision', description: 'store revision the agent cached and acknowledged', priority: 1 },
    { name: 'Outbox', type: 'integer', jsonPath: '.status.outboxDepth', priority: 1 },
    { name: 'Hostname', type: 'string', jsonPath: '.status.hostname', priority: 1 },
    AGE,
  ],
  EdgeApp: [
    { name: 'Ready', type: 'string', jsonPath: '.status.ready', description: 'ready/desired instances over all units' },
    { name: 'Units', type: 'string', jsonPath: '.status.unitsSummary', description: 'ready/desired instances per unit' },
    { name: 'Revision', type: 'integer', jsonPath: '.status.revision' },
    { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
    AGE,
  ],
  Instance: [
    { name: 'App', type: 'string', jsonPath: '.spec.app' },
    { name: 'Unit', type: 'string', jsonPath: '.spec.unit' },
    { name: 'Node', type: 'string', jsonPath: '.spec.node' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Ready', type: 'boolean', jsonPath: '.status.ready' },
    { name: 'Restarts', type: 'integer', jsonPath: '.status.restarts' },
    { name: 'Revision', type: 'integer', jsonPath: '.spec.revision', priority: 1 },
    AGE,
  ],
  EdgeConfig: [AGE],
  DeviceModel: [{ name: 'Description', type: 'string', jsonPath: '.spec.description' }, AGE],
  Device: [
    { name: 'Model', type: 'string', jsonPath: '.spec.model' },
    { name: 'Node', type: 'string', jsonPath: '.spec.node' },
    { name: 'Unit', type: 'string', jsonPath: '.spec.unit' },
    { name: 'Online', type: 'boolean', jsonPath: '.status.online' },
    { name: 'Last-Seen', type: 'date', jsonPath: '.status.lastSeen' },
    AGE,
  ],
  DeviceCredential: [
    { name: 'Device', type: 'string', jsonPath: '.spec.device' },
    { name: 'Username', type: 'string', jsonPath: '.spec.username' },
    AGE,
  ],
  UnitPeers: [{ name: 'Peers', type: 'string', jsonPath: '.spec.peers[*].node' }, AGE],
  AppRevision: [
    { name: 'App', type: 'string', jsonPath: '.spec.app' },
    { name: 'Revision', type: 'integer', jsonPath: '.spec.revision' },
    AGE,
  ],
};
