import { Type, type Static } from '@sinclair/typebox';
import { objectSchema } from './meta.js';

const DataKey = Type.String({ pattern: '^[A-Za-z0-9_][-A-Za-z0-9_.]*$', maxLength: 253, description: 'Keys become file names and env variable names: no \'/\', no leading \'.\'.' });
const Data = Type.Record(DataKey, Type.String({ maxLength: 1024 * 1024 }), { additionalProperties: false });

export const EdgeConfigSpecSchema = Type.Object(
  {
    data: Type.Optional(Data),
    secretData: Type.Optional(Data),
  },
  { additionalProperties: false, description: 'Configuration (data) and secrets (secretData) for apps, delivered to the nodes of the units whose apps use it (ConfigMap/Secret analogue). Values may contain `{{unit}}` and `{{node}}`. Secret values are never logged, shown only with `--show-secrets`, and kept encrypted with a per-node key in the agent\'s cache.' },
);
export type EdgeConfigSpec = Static<typeof EdgeConfigSpecSchema>;

export const EdgeConfigSchema = objectSchema('EdgeConfig', EdgeConfigSpecSchema, Type.Object({}, { additionalProperties: false }));
export type EdgeConfig = Static<typeof EdgeConfigSchema>;

/** What `get` shows instead of a secret value without --show-secrets. */
export const REDACTED = '<redacted>';
