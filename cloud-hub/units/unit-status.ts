import type { EdgeNode, NodeUnit } from '../../shared/api/index.js';

type Condition = NonNullable<NonNullable<NodeUnit['status']>['conditions']>[number];
export type NodeUnitStatus = NonNullable<NodeUnit['status']>;

/**
 * A unit's status: node counts by phase and conditions. Ready: some member node is Ready.
 * Cordoned: spec.cordon. MembershipConflict: a node this unit claims belongs to another unit.
 * A condition keeps its lastTransitionTime while its status does not change.
 */
export function unitStatus(unit: NodeUnit, members: EdgeNode[], lostClaims: string[], previous: NodeUnitStatus | undefined, now: string): NodeUnitStatus {
  const count = (phase: string) => members.filter((n) => (n.status?.phase ?? 'Pending') === phase).length;
  const ready = count('Ready');
  const conditions: Condition[] = [
    cond('Ready', ready > 0, ready > 0 ? 'NodesReady' : members.length ? 'NoNodeReady' : 'NoNodes', ready > 0 ? `${ready} of ${members.length} node(s) Ready` : members.length ? `none of ${members.length} node(s) is Ready` : 'the unit has no nodes'),
  ];
  if (unit.spec?.cordon) conditions.push(cond('Cordoned', true, 'Cordoned', 'no new instances are placed in this unit'));
  if (lostClaims.length) conditions.push(cond('MembershipConflict', true, 'ClaimedByOtherUnit', `node(s) ${lostClaims.slice(0, 10).join(', ')} match this unit but belong to another unit (first by name wins; spec.nodes before spec.selector)`));
  for (const c of conditions) {
    const before = previous?.conditions?.find((p) => p.type === c.type);
    c.lastTransitionTime = before && before.status === c.status ? before.lastTransitionTime : now;
  }
  return { nodes: { total: members.length, ready, disconnected: count('Disconnected'), down: count('Down') }, conditions };
}

function cond(type: string, on: boolean, reason: string, message: string): Condition {
  return { type, status: on ? 'True' : 'False', reason, message, lastTransitionTime: '' };
}
