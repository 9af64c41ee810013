import type { TObject } from '@sinclair/typebox';
import { AppRevisionSchema } from './app-revision.js';
import { DeviceCredentialSchema, DeviceModelSchema, DeviceSchema } from './device.js';
import { EdgeAppSchema } from './edge-app.js';
import { EdgeConfigSchema } from './edge-config.js';
import { EdgeNodeSchema } from './edge-node.js';
import { InstanceSchema } from './instance.js';
import { NodeUnitSchema } from './node-unit.js';
import { UnitPeersSchema } from './unit-peers.js';

export type KindName = 'NodeUnit' | 'EdgeNode' | 'EdgeApp' | 'Instance' | 'EdgeConfig' | 'AppRevision' | 'DeviceModel' | 'Device' | 'DeviceCredential' | 'UnitPeers';

export interface KindInfo {
  kind: KindName;
  /** The path segment in `/apis/outpost.dev/v1alpha1/{plural}`. */
  plural: string;
  singular: string;
  shortNames: string[];
  schema: TObject;
  /** Whether operators may create and update objects of this kind through the API. */
  operatorWritable: boolean;
  /** Whether operators may delete objects of this kind. */
  operatorDeletable: boolean;
}

export const KINDS: readonly KindInfo[] = [
  { kind: 'NodeUnit', plural: 'nodeunits', singular: 'nodeunit', shortNames: ['units', 'unit', 'nu'], schema: NodeUnitSchema, operatorWritable: true, operatorDeletable: true },
  { kind: 'EdgeNode', plural: 'edgenodes', singular: 'edgenode', shortNames: ['nodes', 'node', 'no'], schema: EdgeNodeSchema, operatorWritable: false, operatorDeletable: true },
  { kind: 'EdgeApp', plural: 'edgeapps', singular: 'edgeapp', shortNames: ['apps', 'app', 'ea'], schema: EdgeAppSchema, operatorWritable: true, operatorDeletable: true },
  { kind: 'Instance', plural: 'instances', singular: 'instance', shortNames: ['inst', 'instances'], schema: InstanceSchema, operatorWritable: false, operatorDeletable: false },
  { kind: 'EdgeConfig', plural: 'edgeconfigs', singular: 'edgeconfig', shortNames: ['configs', 'config', 'ec'], schema: EdgeConfigSchema, operatorWritable: true, operatorDeletable: true },
  { kind: 'DeviceModel', plural: 'devicemodels', singular: 'devicemodel', shortNames: ['models', 'model', 'dm'], schema: DeviceModelSchema, operatorWritable: true, operatorDeletable: true },
  { kind: 'Device', plural: 'devices', singular: 'device', shortNames: ['dev', 'devs'], schema: DeviceSchema, operatorWritable: true, operatorDeletable: true },
  { kind: 'DeviceCredential', plural: 'devicecredentials', singular: 'devicecredential', shortNames: ['credentials', 'credential', 'dc'], schema: DeviceCredentialSchema, operatorWritable: false, operatorDeletable: false },
  { kind: 'UnitPeers', plural: 'unitpeers', singular: 'unitpeers', shortNames: ['peers', 'up'], schema: UnitPeersSchema, operatorWritable: false, operatorDeletable: false },
  { kind: 'AppRevision', plural: 'apprevisions', singular: 'apprevision', shortNames: ['revisions', 'revision', 'rev'], schema: AppRevisionSchema, operatorWritable: false, operatorDeletable: false },
];

export function kindInfo(kind: KindName): KindInfo {
  const info = KINDS.find((k) => k.kind === kind);
  if (!info) throw new Error(`unregistered kind ${kind}`);
  return info;
}

/** Resolves a kind from a user's word: `EdgeApp`, `edgeapps`, `edgeapp`, `apps`, `app`, `ea`. */
export function resolveKind(word: string): KindInfo | undefined {
  const w = word.toLowerCase();
  return KINDS.find((k) => k.kind.toLowerCase() === w || k.plural === w || k.singular === w || k.shortNames.includes(w));
}

export function isKindName(value: unknown): value is KindName {
  return typeof value === 'string' && KINDS.some((k) => k.kind === value);
}
