import { Type, type Static } from '@sinclair/typebox';
import { NameSchema, objectSchema } from './meta.js';
import { OverrideSchema } from './edge-app.js';
import { AppTemplateSchema } from './workload.js';

export const AppRevisionSpecSchema = Type.Object(
  {
    app: NameSchema,
    revision: Type.Integer({ minimum: 1 }),
    template: AppTemplateSchema,
    overrides: Type.Optional(Type.Array(OverrideSchema, { maxItems: 256 })),
    hash: Type.String({ maxLength: 64, description: 'Hash of template + overrides: a revision is reused when an app returns to it.' }),
  },
  { additionalProperties: false, description: 'One revision of an EdgeApp\'s template and overrides, kept by the hub (named `<app>-<revision>`) so that `outpost rollout undo` can return to it. Hub-written; deleted with the app or when older than the app\'s revisionHistoryLimit.' },
);
export type AppRevisionSpec = Static<typeof AppRevisionSpecSchema>;

export const AppRevisionSchema = objectSchema('AppRevision', AppRevisionSpecSchema, Type.Object({}, { additionalProperties: false }));
export type AppRevision = Static<typeof AppRevisionSchema>;
