import { Type, type Static } from '@sinclair/typebox';
import { described, NameSchema, objectSchema } from './meta.js';
import { DurationSchema } from './node-unit.js';

// Devices (issue 5): DeviceModel (typed properties) and Device (a twin bound to a node or a unit).

export const PropertyTypeSchema = Type.Union([Type.Literal('int'), Type.Literal('float'), Type.Literal('bool'), Type.Literal('string'), Type.Literal('enum')]);
export type PropertyType = Static<typeof PropertyTypeSchema>;

export const PropertySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 64 }),
    type: PropertyTypeSchema,
    enum: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { minItems: 1, maxItems: 256, description: 'The allowed values of an enum property.' })),
    unit: Type.Optional(Type.String({ maxLength: 32, description: 'Unit of measure, e.g. "°C", "%" (shown, not converted).' })),
    minimum: Type.Optional(Type.Number()),
    maximum: Type.Optional(Type.Number()),
    maxLength: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536, description: 'String properties: at most this many characters. Default 1024.' })),
    access: Type.Union([Type.Literal('ReadOnly'), Type.Literal('ReadWrite')], { description: 'ReadOnly: the device reports it. ReadWrite: the operator may also set it (desired).' }),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type Property = Static<typeof PropertySchema>;

export const DeviceModelSpecSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    properties: Type.Array(PropertySchema, { minItems: 1, maxItems: 256, description: 'The typed properties of devices of this model.' }),
  },
  { additionalProperties: false, description: 'A kind of device: its typed properties (type, unit, range, access).' },
);
export const DeviceModelSchema = objectSchema('DeviceModel', DeviceModelSpecSchema, Type.Object({}, { additionalProperties: false }));
export type DeviceModel = Static<typeof DeviceModelSchema>;

export const PropertyValueSchema = Type.Union([Type.Number(), Type.Boolean(), Type.String({ maxLength: 65536 })], { description: 'A property value: what JSON gives for the model\'s types (checked against the model, not here).' });
export type PropertyValue = Static<typeof PropertyValueSchema>;

export const DeviceSpecSchema = Type.Object(
  {
    model: described(NameSchema, 'The DeviceModel.'),
    node: Type.Optional(described(NameSchema, 'The node whose agent is the device\'s MQTT home. Exactly one of node and unit.')),
    unit: Type.Optional(described(NameSchema, 'Any node of the unit may be its home (a device that roams between a site\'s gateways).')),
    protocol: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }), { additionalProperties: false, description: 'Protocol metadata for the device\'s own software (free form, shown by describe).' })),
    desired: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), PropertyValueSchema, { additionalProperties: false, description: 'The desired twin: ReadWrite properties only. Each change of spec bumps metadata.generation: the desired version.' })),
    telemetryRetention: Type.Optional(Type.Object({ maxAge: Type.Optional(DurationSchema), maxCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })) }, { additionalProperties: false, description: 'Telemetry kept at the hub for this device: the newer of both limits wins. Defaults 24h and 10 000.' })),
  },
  { additionalProperties: false },
);
export type DeviceSpec = Static<typeof DeviceSpecSchema>;

export const ReportedValueSchema = Type.Object(
  {
    value: PropertyValueSchema,
    timestamp: Type.String({ maxLength: 64 }),
    version: Type.Optional(Type.Integer({ minimum: 0, description: 'The device\'s report version this value came with, when it sends one (twin merge order).' })),
    node: Type.Optional(Type.String({ maxLength: 253, description: 'The node whose agent reported this value (twin merge order, last tie-break).' })),
  },
  { additionalProperties: false },
);

export const DeviceStatusSchema = Type.Object(
  {
    reported: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), ReportedValueSchema, { additionalProperties: false, description: 'Latest reported value of each property, with the device\'s (or arrival) timestamp.' })),
    reportedVersion: Type.Optional(Type.Integer({ minimum: 0, description: 'The device\'s own report counter, if it sends one: a report with a lower version is stale and ignored.' })),
    observedDesired: Type.Optional(Type.Integer({ minimum: 0, description: 'The desired version (metadata.generation) the device has acknowledged.' })),
    online: Type.Optional(Type.Boolean()),
    presenceAt: Type.Optional(Type.String({ maxLength: 64, description: 'When the presence `online` follows was observed (newest presence report wins).' })),
    lastSeen: Type.Optional(Type.String({ maxLength: 64 })),
    node: Type.Optional(Type.String({ maxLength: 253, description: 'The node that last reported about the device.' })),
    message: Type.Optional(Type.String({ maxLength: 2048 })),
  },
  { additionalProperties: false },
);
export type DeviceStatus = Static<typeof DeviceStatusSchema>;

export const DeviceSchema = objectSchema('Device', DeviceSpecSchema, DeviceStatusSchema);
export type Device = Static<typeof DeviceSchema>;

export const DeviceCredentialSpecSchema = Type.Object(
  {
    device: NameSchema,
    username: Type.String({ maxLength: 253 }),
    passwordHash: Type.String({ maxLength: 512, description: '`scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>`' }),
    createdAt: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false, description: 'A device\'s MQTT credential, kept by the hub (hub-written, named like the device): the username and a scrypt hash of the password. The password itself is shown once, by `outpost device credentials NAME` (which creates or rotates it). Delivered to the agents that may be the device\'s home, so they authenticate it offline.' },
);
export const DeviceCredentialSchema = objectSchema('DeviceCredential', DeviceCredentialSpecSchema, Type.Object({}, { additionalProperties: false }));
export type DeviceCredential = Static<typeof DeviceCredentialSchema>;
