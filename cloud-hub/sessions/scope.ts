import type { AnyObject, EdgeApp, Instance, NodeUnit } from '../../shared/api/index.js';
import { matchesLabels } from '../../shared/labels.js';
import type { ObjectKey } from '../../shared/protocol/frames.js';
import type { ObjectCache } from '../cache/object-cache.js';

/** Who a session serves. Fixed at join: a node never changes unit. */
export interface NodeScope {
  node: string;
  unit: string;
}

/** Whether an EdgeApp runs in a unit: named, or the unit's labels match the app's unit selector. */
export function appSelectsUnit(app: EdgeApp, unitName: string, unit: NodeUnit | undefined): boolean {
  const sel = app.spec.units;
  if (sel.names?.includes(unitName)) return true;
  if (sel.selector && unit) return matchesLabels(unit.metadata.labels, sel.selector.matchLabels);
  return false;
}

/**
 * Node authorization for reads: the objects a node may see are its own unit, the apps selecting
 * that unit, and the instances placed on the node. Nothing else ever reaches its session.
 */
export function inScope(obj: AnyObject, scope: NodeScope, cache: ObjectCache): boolean {
  switch (obj.kind) {
    case 'NodeUnit':
      return obj.metadata.name === scope.unit;
    case 'EdgeApp':
      return appSelectsUnit(obj as EdgeApp, scope.unit, cache.get('NodeUnit', scope.unit) as NodeUnit | undefined);
    case 'Instance':
      return (obj as Instance).spec.node === scope.node;
    default:
      return false;
  }
}

/**
 * What a node is shown of an object: an EdgeApp without the names and status of other units
 * (a node learns nothing about sites other than its own). Other kinds are sent as they are.
 */
export function projectForNode(obj: AnyObject, scope: NodeScope): AnyObject {
  if (obj.kind !== 'EdgeApp') return obj;
  const app = obj as EdgeApp;
  const spec = { ...app.spec, units: { ...app.spec.units, ...(app.spec.units.names ? { names: app.spec.units.names.filter((n) => n === scope.unit) } : {}) } };
  const status = app.status ? { ...app.status, ...(app.status.units ? { units: app.status.units.filter((u) => u.unit === scope.unit) } : {}) } : undefined;
  return { ...app, spec, ...(status ? { status } : {}) } as AnyObject;
}

/** The node's whole desired set, from the cache. */
export function desiredSet(scope: NodeScope, cache: ObjectCache): AnyObject[] {
  const out: AnyObject[] = [];
  const unit = cache.get('NodeUnit', scope.unit);
  if (unit) out.push(unit);
  for (const app of cache.list('EdgeApp')) if (inScope(app, scope, cache)) out.push(app);
  for (const inst of cache.list('Instance')) if (inScope(inst, scope, cache)) out.push(inst);
  return out;
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
