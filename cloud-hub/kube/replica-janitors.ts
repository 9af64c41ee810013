import type { Component } from '../../shared/lifecycle.js';
import type { Logger } from '../../shared/logger.js';
import type { ObjectCache } from '../cache/object-cache.js';
import type { HubSecretStore } from '../auth/secret-store.js';
import type { TelemetryStore } from '../devices/telemetry-store.js';

/**
 * Kubernetes mode, leader only: an EdgeNode deleted outside the hub's API (`kubectl delete
 * edgenode`) loses its credential Secret, as a delete through the API does, so the node can join
 * again. Skipped when the node exists again by the time the event is handled (re-joined).
 */
export function credentialJanitor(deps: { cache: ObjectCache; secrets: HubSecretStore; log: Logger }): Component {
  let unsubscribe: (() => void) | undefined;
  return {
    name: 'credential-janitor',
    start: async () => {
      unsubscribe = deps.cache.onChange((e) => {
        if (e.type !== 'DELETED' || e.object.kind !== 'EdgeNode') return;
        const node = e.object.metadata.name;
        if (deps.cache.get('EdgeNode', node)) return;
        void Promise.resolve().then(() => deps.secrets.revokeNode(node)).catch((err: unknown) => deps.log.error({ err, node }, 'revoking the credential of a deleted node failed'));
      });
    },
    stop: async () => { unsubscribe?.(); },
  };
}

/**
 * Kubernetes mode, every replica: telemetry is per replica (never in etcd), so each one drops the
 * telemetry of a deleted Device itself (in SQLite mode the device controller does it).
 */
export function telemetryJanitor(deps: { cache: ObjectCache; telemetry: TelemetryStore; log: Logger }): Component {
  let unsubscribe: (() => void) | undefined;
  const drop = (device: string) => {
    try {
      deps.telemetry.deleteDevice(device);
    } catch (err) {
      deps.log.error({ err, device }, 'dropping the telemetry of a deleted device failed');
    }
  };
  return {
    name: 'telemetry-janitor',
    start: async () => {
      unsubscribe = deps.cache.onChange((e) => { if (e.type === 'DELETED' && e.object.kind === 'Device') drop(e.object.metadata.name); });
      for (const device of deps.telemetry.devices()) if (!deps.cache.get('Device', device)) drop(device);
    },
    stop: async () => { unsubscribe?.(); },
  };
}
