import { CloneType, Type, type Static, type TSchema } from '@sinclair/typebox';

export const API_GROUP = 'outpost.dev';
export const API_VERSION = 'outpost.dev/v1alpha1';
/** Label every EdgeNode carries: the NodeUnit it joined (set by the hub from the join token). */
export const UNIT_LABEL = 'outpost.dev/unit';

/** A copy of `schema` with its own description: for a shared schema used by a field that says more (shown by `kubectl explain`). */
export function described<T extends TSchema>(schema: T, description: string): T {
  // CloneType(schema, options) lets the schema's own description win; this one must win.
  return { ...CloneType(schema), description };
}

export const NameSchema = Type.String({
  pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
  maxLength: 253,
  description: 'lowercase letters, digits, "-" and "."; starts and ends with a letter or digit',
});

const LabelKey = '^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$';
// additionalProperties: false makes keys that break the key pattern errors (TypeBox records
// otherwise accept them unchecked).
export const LabelsSchema = Type.Record(Type.String({ pattern: LabelKey, maxLength: 317 }), Type.String({ pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$', maxLength: 63 }), { additionalProperties: false });
export const AnnotationsSchema = Type.Record(Type.String({ pattern: LabelKey, maxLength: 317 }), Type.String({ maxLength: 65536 }), { additionalProperties: false });

export const ObjectMetaSchema = Type.Object(
  {
    name: NameSchema,
    labels: Type.Optional(LabelsSchema),
    annotations: Type.Optional(AnnotationsSchema),
    // Set by the server; accepted on input so that `get -o yaml | apply -f -` round-trips.
    resourceVersion: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
    generation: Type.Optional(Type.Integer({ minimum: 0 })),
    uid: Type.Optional(Type.String()),
    creationTimestamp: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type ObjectMeta = Static<typeof ObjectMetaSchema>;

export const MatchLabelsSelectorSchema = Type.Object(
  { matchLabels: Type.Optional(LabelsSchema) },
  { additionalProperties: false },
);
export type MatchLabelsSelector = Static<typeof MatchLabelsSelectorSchema>;

/** Builds the schema of a whole object of one kind; `status` is optional and written by the system. */
export function objectSchema<K extends string, S extends TSchema, T extends TSchema>(kind: K, spec: S, status: T) {
  return Type.Object(
    {
      apiVersion: Type.Literal(API_VERSION),
      kind: Type.Literal(kind),
      metadata: ObjectMetaSchema,
      spec,
      status: Type.Optional(status),
    },
    { additionalProperties: false },
  );
}

/** The shape every stored object shares, whatever its kind. */
export interface AnyObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
}
