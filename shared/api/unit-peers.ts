import { Type, type Static } from '@sinclair/typebox';
import { NameSchema, objectSchema } from './meta.js';

export const PeerEndpointSchema = Type.String({ maxLength: 300, pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$', description: 'host:port or [IPv6]:port of an agent\'s peer listener.' });

export const UnitPeersSpecSchema = Type.Object(
  {
    peers: Type.Array(Type.Object({ node: NameSchema, endpoint: PeerEndpointSchema }, { additionalProperties: false }), { maxItems: 10_000 }),
    credential: Type.String({ minLength: 1, maxLength: 256 }),
    previousCredential: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  { additionalProperties: false, description: 'A unit\'s peer list for registry replication (hub-written, named like the unit): every member node that advertised a peer endpoint, and the unit peer credential, a random secret the hub generates per unit and rotates when a node leaves the unit (`previousCredential` stays accepted until the next rotation, so that agents not yet synced still connect). Delivered to the unit\'s agents through sync, so the list is cached and works offline; agents seal the credentials in their cache. The API shows the credentials redacted unless showSecrets.' },
);

export const UnitPeersSchema = objectSchema('UnitPeers', UnitPeersSpecSchema, Type.Object({}, { additionalProperties: false }));
export type UnitPeers = Static<typeof UnitPeersSchema>;
