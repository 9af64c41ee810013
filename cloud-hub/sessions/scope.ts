import type { AnyObject, EdgeApp, Instance, NodeUnit } from '../../shared/api/index.js';
import { selectsUnit } from '../../shared/api/render.js';
import type { ObjectKey } from '../../shared/protocol/frames.js';
import type { CacheEvent, ObjectCache } from '../cache/object-cache.js';
import { configsForNode, configsOfObject } from '../configs/config-scope.js';
import { deviceDesiredSet, deviceObjectInScope, deviceScopeChanged } from '../devices/device-scope.js';

/** Who a session serves: the node and its unit when the session opened (a unit change closes the session). */
export interface NodeScope {
  node: string;
  unit: string;
}

/** Whether an EdgeApp runs in a unit: named, or the unit's labels match the app's unit selector. */
export function appSelectsUnit(app: EdgeApp, unitName: string, unit: NodeUnit | undefined): boolean {
  return selectsUnit(app.spec.units, unitName, unit?.metadata.labels ?? (unit ? {} : undefined));
}

/**
 * Node authorization for reads: the objects a node may see are its own unit, the apps selecting
 * that unit, the instances placed on the node, and the EdgeConfigs those apps and instances use.
 * Nothing else ever reaches its session.
 */
export function inScope(obj: AnyObject, scope: NodeScope, cache: ObjectCache): boolean {
  switch (obj.kind) {
    case 'NodeUnit':
    case 'UnitPeers':
      return obj.metadata.name === scope.unit;
    case 'EdgeApp':
      return appSelectsUnit(obj as EdgeApp, scope.unit, cache.get('NodeUnit', scope.unit) as NodeUnit | undefined);
    case 'Instance':
      return (obj as Instance).spec.node === scope.node;
    case 'EdgeConfig':
      return nodeConfigNames(scope, cache).has(obj.metadata.name);
    case 'Device':
    case 'DeviceModel':
    case 'DeviceCredential':
      return deviceObjectInScope(obj, scope, cache);
    default:
      return false;
  }
}

/**
 * What a node is shown of an object: an EdgeApp without the names, overrides and status of other
 * units (a node learns nothing about sites other than its own: overrides name other units and
 * carry their values; status messages and warnings name them too). Its instances carry the
 * rendered template, so the agent needs neither. Other kinds are sent as they are.
 */
export function projectForNode(obj: AnyObject, scope: NodeScope): AnyObject {
  if (obj.kind !== 'EdgeApp') return obj;
  // One projection per app version and unit, shared by the unit's sessions: their digests
  // (objectDigest memoizes per object) are then computed once per unit, not once per node
  // (issue 7: an app update fanned out to 5 000 sessions spent 1-2 s re-hashing it).
  let perUnit = projections.get(obj);
  if (!perUnit) projections.set(obj, (perUnit = new Map()));
  let projected = perUnit.get(scope.unit);
  if (!projected) perUnit.set(scope.unit, (projected = projectApp(obj as EdgeApp, scope)));
  return projected;
}

/** Cache objects are frozen and replaced on change, so a projection stays valid as long as its source. */
const projections = new WeakMap<AnyObject, Map<string, AnyObject>>();

function projectApp(app: EdgeApp, scope: NodeScope): AnyObject {
  const { overrides: _overrides, ...specRest } = app.spec;
  const spec = { ...specRest, units: { ...app.spec.units, ...(app.spec.units.names ? { names: app.spec.units.names.filter((n) => n === scope.unit) } : {}) } };
  let status: EdgeApp['status'];
  if (app.status) {
    const { message: _message, warnings: _warnings, ...statusRest } = app.status;
    status = { ...statusRest, ...(app.status.units ? { units: app.status.units.filter((u) => u.unit === scope.unit) } : {}) };
  }
  return { ...app, spec, ...(status ? { status } : {}) } as AnyObject;
}

/** The node's whole desired set, from the cache. */
export function desiredSet(scope: NodeScope, cache: ObjectCache): AnyObject[] {
  const out: AnyObject[] = [];
  const unit = cache.get('NodeUnit', scope.unit);
  if (unit) out.push(unit);
  const peers = cache.get('UnitPeers', scope.unit);
  if (peers) out.push(peers);
  const apps = cache.list('EdgeApp').filter((a) => inScope(a, scope, cache)) as EdgeApp[];
  const instances = cache.list('Instance').filter((i) => inScope(i, scope, cache)) as Instance[];
  // Configs before the apps and instances that use them: a split resync never lands an
  // instance whose config is still to come.
  for (const name of configsForNode(apps, instances, scope.unit, unitLabels(cache, scope.unit))) {
    const config = cache.get('EdgeConfig', name);
    if (config) out.push(config);
  }
  out.push(...apps, ...instances);
  out.push(...deviceDesiredSet(scope, cache));
  return out;
}

/** A unit's labels as override selectors read them: {} for a unit without labels, undefined for no unit. */
export function unitLabels(cache: ObjectCache, unitName: string): Record<string, string> | undefined {
  const unit = cache.get('NodeUnit', unitName) as NodeUnit | undefined;
  return unit ? (unit.metadata.labels ?? {}) : undefined;
}

/** The EdgeConfigs a node may see: those its unit's apps and its own instances use. */
export function nodeConfigNames(scope: NodeScope, cache: ObjectCache): Set<string> {
  const apps = cache.list('EdgeApp').filter((a) => inScope(a, scope, cache)) as EdgeApp[];
  const instances = cache.list('Instance').filter((i) => inScope(i, scope, cache)) as Instance[];
  return configsForNode(apps, instances, scope.unit, unitLabels(cache, scope.unit));
}

/**
 * Whether an app or instance change changes which configs the node uses (an app starts or
 * stops using one, or enters or leaves the node's scope). The session then resyncs, which
 * sends the new configs with the change and deletes the ones no longer used.
 */
export function configScopeChanged(event: CacheEvent, scope: NodeScope, cache: ObjectCache): boolean {
  const kind = event.object.kind;
  if (kind === 'Device') {
    // A device entering, leaving or changing model changes the node's models and credentials.
    return deviceScopeChanged(event.oldObject, event.type === 'DELETED' ? undefined : event.object, scope);
  }
  if (kind !== 'EdgeApp' && kind !== 'Instance') return false;
  // A status write (the most frequent change) moves nothing: scope and configs follow the spec.
  if (event.type !== 'DELETED' && onlyStatusChanged(event.oldObject, event.object)) return false;
  const labels = unitLabels(cache, scope.unit);
  const refs = (o: AnyObject | undefined, present: boolean) => (o && present && inScope(o, scope, cache) ? configsOfObject(o as EdgeApp | Instance, scope.unit, labels).join(',') : '');
  return refs(event.oldObject, true) !== refs(event.object, event.type !== 'DELETED');
}

export function keyOf(obj: AnyObject): ObjectKey {
  return { kind: obj.kind, name: obj.metadata.name };
}

/** True when only status (or nothing the agent uses) changed: such events are not sent down. */
export function onlyStatusChanged(oldObj: AnyObject | undefined, newObj: AnyObject): boolean {
  if (!oldObj) return false;
  return (
    oldObj.metadata.generation === newObj.metadata.generation &&
    JSON.stringify(oldObj.metadata.labels ?? {}) === JSON.stringify(newObj.metadata.labels ?? {}) &&
    JSON.stringify(oldObj.metadata.annotations ?? {}) === JSON.stringify(newObj.metadata.annotations ?? {})
  );
}
