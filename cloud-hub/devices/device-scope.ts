import type { AnyObject, Device, DeviceCredential } from '../../shared/api/index.js';
import { parseDuration } from '../../shared/duration.js';
import type { ObjectCache } from '../cache/object-cache.js';
import { DEFAULT_RETENTION, type Retention } from './telemetry-store.js';

/** Who a session serves (as in sessions/scope.ts; repeated here so devices/ does not import sessions/). */
export interface DeviceHomeScope {
  node: string;
  unit: string;
}

/** Whether the node may be the device's MQTT home: the device is bound to it or to its unit. */
export function isDeviceHome(device: Device, scope: DeviceHomeScope): boolean {
  return device.spec.node !== undefined ? device.spec.node === scope.node : device.spec.unit === scope.unit;
}

/** The devices a node may be the home of. */
export function devicesOfNode(scope: DeviceHomeScope, cache: ObjectCache): Device[] {
  return (cache.list('Device') as Device[]).filter((d) => isDeviceHome(d, scope));
}

/**
 * Node authorization for devices: a node sees the Devices it may be home of, their models and
 * their credentials (so it authenticates them offline); nothing of other nodes' devices.
 */
export function deviceObjectInScope(obj: AnyObject, scope: DeviceHomeScope, cache: ObjectCache): boolean {
  switch (obj.kind) {
    case 'Device':
      return isDeviceHome(obj as Device, scope);
    case 'DeviceModel':
      return devicesOfNode(scope, cache).some((d) => d.spec.model === obj.metadata.name);
    case 'DeviceCredential': {
      const device = cache.get('Device', (obj as DeviceCredential).spec.device) as Device | undefined;
      return device !== undefined && isDeviceHome(device, scope);
    }
    default:
      return false;
  }
}

/** Models first, then devices, then credentials: a device never lands before its model. */
export function deviceDesiredSet(scope: DeviceHomeScope, cache: ObjectCache): AnyObject[] {
  const devices = devicesOfNode(scope, cache);
  const models = [...new Set(devices.map((d) => d.spec.model))].map((m) => cache.get('DeviceModel', m)).filter((m): m is AnyObject => m !== undefined);
  const credentials = devices.map((d) => cache.get('DeviceCredential', d.metadata.name)).filter((c): c is AnyObject => c !== undefined && (c as DeviceCredential).spec.device === c.metadata.name);
  return [...models, ...devices, ...credentials];
}

/**
 * Whether a Device change changes which models the node needs (a device enters or leaves its
 * scope, or changes model): the session then resyncs, bringing models and credentials along.
 */
export function deviceScopeChanged(oldObj: AnyObject | undefined, newObj: AnyObject | undefined, scope: DeviceHomeScope): boolean {
  const key = (o: AnyObject | undefined) => (o && isDeviceHome(o as Device, scope) ? `in:${(o as Device).spec.model}` : 'out');
  return key(oldObj) !== key(newObj);
}

/** The sessions (by node or unit) a device change concerns: its homes before and after. */
export function deviceHomes(objs: (AnyObject | undefined)[]): { nodes: Set<string>; units: Set<string> } {
  const out = { nodes: new Set<string>(), units: new Set<string>() };
  for (const o of objs) {
    const d = o as Device | undefined;
    if (d?.spec.node) out.nodes.add(d.spec.node);
    if (d?.spec.unit) out.units.add(d.spec.unit);
  }
  return out;
}

/** A device's telemetry retention: spec.telemetryRetention, else 24h and 10 000 rows. */
export function retentionOf(device: Device | undefined): Retention {
  const r = device?.spec.telemetryRetention;
  let maxAgeMs = DEFAULT_RETENTION.maxAgeMs;
  if (r?.maxAge) {
    try {
      maxAgeMs = parseDuration(r.maxAge, 'telemetryRetention.maxAge');
    } catch {
      // validated at apply time by the schema's duration pattern; keep the default otherwise
    }
  }
  return { maxAgeMs, maxCount: r?.maxCount ?? DEFAULT_RETENTION.maxCount };
}
