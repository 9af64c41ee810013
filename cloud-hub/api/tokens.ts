import type { IncomingMessage, ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { LabelsSchema, NameSchema } from '../../shared/api/index.js';
import { fieldErrors } from '../../shared/api/validate.js';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError } from '../../shared/errors.js';
import type { HubSecretStore } from '../auth/secret-store.js';
import type { Store } from '../store/store.js';
import { readObjectBody, sendJson } from './http.js';

const CreateToken = TypeCompiler.Compile(
  Type.Object(
    {
      unit: NameSchema,
      /** Duration such as 24h (default 24h); "never" = no expiry. */
      ttl: Type.Optional(Type.String({ maxLength: 32 })),
      uses: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()])),
      description: Type.Optional(Type.String({ maxLength: 256 })),
      /** Labels given to every node that joins with the token (trusted: unit selectors match them). */
      labels: Type.Optional(LabelsSchema),
    },
    { additionalProperties: false },
  ),
);

export const DEFAULT_TOKEN_TTL = '24h';

/** `/apis/outpost.dev/v1alpha1/jointokens[/{id}]`: create (POST), list (GET), revoke (DELETE). */
export async function handleTokens(deps: { store: Store; secrets: HubSecretStore }, req: IncomingMessage, res: ServerResponse, id: string | undefined): Promise<void> {
  const method = req.method ?? 'GET';
  if (id === undefined && method === 'GET') return sendJson(res, 200, { items: await deps.secrets.listJoinTokens() });
  if (id === undefined && method === 'POST') {
    const body = await readObjectBody(req);
    if (!CreateToken.Check(body)) {
      const fields = fieldErrors(CreateToken as never, body);
      throw new OutpostError('INVALID', `token request is invalid: ${fields[0]?.path} ${fields[0]?.message}`, { fields });
    }
    if (!(await deps.store.get('NodeUnit', body.unit))) {
      throw new OutpostError('NOT_FOUND', `node unit "${body.unit}" does not exist; create it first (see examples/units.yaml)`);
    }
    const ttlText = body.ttl ?? DEFAULT_TOKEN_TTL;
    const ttlMs = ttlText === 'never' ? null : parseDuration(ttlText, 'ttl');
    const created = await deps.secrets.createJoinToken({ unit: body.unit, ttlMs, uses: body.uses === undefined ? 1 : body.uses, description: body.description ?? '', labels: body.labels ?? {} });
    return sendJson(res, 201, { token: created.token, ...created.info });
  }
  if (id !== undefined && method === 'DELETE') {
    if (!(await deps.secrets.deleteJoinToken(id))) throw new OutpostError('NOT_FOUND', `join token ${id} not found`);
    return sendJson(res, 200, { id, deleted: true });
  }
  throw new OutpostError('METHOD_NOT_ALLOWED', `${method} is not allowed here`);
}
