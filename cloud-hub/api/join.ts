import type { IncomingMessage, ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { API_VERSION, LabelsSchema, NameSchema, UNIT_LABEL, type AnyObject, type EdgeNode, type NodeUnit } from '../../shared/api/index.js';
import { TRUSTED_LABELS_ANNOTATION, resolveMembership } from '../units/membership.js';
import { stampNode } from '../units/stamping.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import { fieldErrors } from '../../shared/api/validate.js';
import type { Logger } from '../../shared/logger.js';
import type { HubSecretStore } from '../auth/secret-store.js';
import type { HubMetrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { ObjectCache } from '../cache/object-cache.js';
import { readObjectBody, sendJson } from './http.js';

const JoinRequest = TypeCompiler.Compile(
  Type.Object(
    { token: Type.String({ maxLength: 256 }), node: NameSchema, labels: Type.Optional(LabelsSchema) },
    { additionalProperties: false },
  ),
);

export interface JoinResponse {
  node: string;
  unit: string;
  credential: string;
}

/**
 * `POST /agent/v1/join {token, node, labels}`: checks the join token, creates the EdgeNode in the
 * token's unit, and returns the node's own credential (shown once; only its hash is kept).
 */
export async function handleJoin(deps: { store: Store; secrets: HubSecretStore; log: Logger; metrics: HubMetrics; cache?: ObjectCache }, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readObjectBody(req);
  if (!JoinRequest.Check(body)) {
    const fields = fieldErrors(JoinRequest as never, body);
    throw new OutpostError('INVALID', `join request is invalid: ${fields[0]?.path} ${fields[0]?.message}`, { fields });
  }
  let unit: string;
  let tokenLabels: Record<string, string>;
  try {
    ({ unit, labels: tokenLabels } = await deps.secrets.checkJoinToken(body.token));
  } catch (err) {
    if (isOutpostError(err)) deps.metrics.authFailures.inc({ reason: err.code });
    throw err;
  }
  if (await deps.secrets.hasNode(body.node)) {
    throw new OutpostError('NODE_EXISTS', `node "${body.node}" has already joined; to re-join it, first run \`outpost delete node ${body.node}\``);
  }
  // A token grants one unit. A name another unit lists in spec.nodes is that unit's to give:
  // joining under it with some other unit's token would move the node into that unit.
  // From the cache when there is one: listing the store parses every unit per join (issue 7, churn profile).
  const allUnits = (deps.cache ? deps.cache.list('NodeUnit') : (await deps.store.list('NodeUnit')).items) as NodeUnit[];
  const claimers = allUnits.filter((u) => u.metadata.name !== unit && (u.spec as NodeUnit['spec'])?.nodes?.includes(body.node));
  if (claimers.length > 0) {
    throw new OutpostError('FORBIDDEN', `node name "${body.node}" is listed in spec.nodes of unit ${claimers.map((u) => u.metadata.name).join(', ')}; join it with a token of that unit`);
  }
  // The agent's own labels are placement hints only; the token's labels (set by an operator) are
  // the ones unit selectors match, and they win over the agent's.
  const labels = { ...body.labels, ...tokenLabels, [UNIT_LABEL]: unit };
  const annotations = Object.keys(tokenLabels).length ? { [TRUSTED_LABELS_ANNOTATION]: Object.keys(tokenLabels).sort().join(',') } : undefined;
  const existing = await deps.store.get('EdgeNode', body.node);
  if (existing && ((existing.spec as { joinUnit?: string }).joinUnit ?? (existing.spec as { unit: string }).unit) !== unit) {
    throw new OutpostError('NODE_EXISTS', `an EdgeNode "${body.node}" exists in another unit; delete it first`);
  }
  if (!existing) {
    // Created with its status in one write (one commit per join, not two).
    // Stamped for its unit as the unit controller would (one write per join instead of three).
    const fresh: EdgeNode = { apiVersion: API_VERSION, kind: 'EdgeNode', metadata: { name: body.node, labels, ...(annotations && { annotations }) }, spec: { unit, joinUnit: unit } } as EdgeNode;
    const member = resolveMembership(fresh, allUnits).unit;
    const node: AnyObject = { ...stampNode(fresh, member, allUnits.find((u) => u.metadata.name === member)), status: { phase: 'Pending' } };
    await deps.store.create(node);
  }
  const { credential } = await deps.secrets.joinNode(body.token, body.node);
  deps.log.info({ node: body.node, unit }, 'node joined');
  const response: JoinResponse = { node: body.node, unit, credential };
  sendJson(res, 201, response);
}
