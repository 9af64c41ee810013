// One valid object of every kind in KINDS, with spec and status filled in as the hub writes them:
// the project's examples/ where they exist, built here for the hub-written kinds examples/ lacks.
import { readFileSync } from 'node:fs';
import { API_VERSION, type AnyObject } from '../../shared/api/index.js';
import { parseManifests } from '../../shared/yaml.js';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;
const FROM_EXAMPLES = ['units.yaml', 'hello-app.yaml', 'multi-site/pos-config.yaml', 'reference/edgenode.yaml', 'reference/instance.yaml'];
const SERVER_SET = ['uid', 'resourceVersion', 'generation', 'creationTimestamp'] as const;

function obj(kind: string, name: string, spec: unknown, status?: unknown): AnyObject {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec, ...(status === undefined ? {} : { status }) };
}

const template = { processes: [{ command: 'sleep', args: ['60'], env: { MODE: 'demo' }, resources: { requests: { cpu: '250m', memory: '64Mi' } } }] };

const BUILT: AnyObject[] = [
  obj('DeviceModel', 'thermometer', {
    description: 'a temperature sensor',
    properties: [
      { name: 'temperature', type: 'float', unit: '°C', minimum: -40, maximum: 125, access: 'ReadOnly' },
      { name: 'mode', type: 'enum', enum: ['eco', 'boost'], access: 'ReadWrite' },
    ],
  }),
  obj('Device', 'thermo-1', { model: 'thermometer', node: 'edge-a1', protocol: { bus: 'i2c' }, desired: { mode: 'eco' }, telemetryRetention: { maxAge: '24h', maxCount: 1000 } }, {
    reported: { temperature: { value: 21.5, timestamp: '2026-12-07T05:00:00.000Z', node: 'edge-a1' }, mode: { value: 'eco', timestamp: '2026-12-07T05:00:00.000Z' } },
    observedDesired: 1, online: true, lastSeen: '2026-12-07T05:00:00.000Z', node: 'edge-a1',
  }),
  obj('DeviceCredential', 'thermo-1', { device: 'thermo-1', username: 'thermo-1', passwordHash: 'scrypt$16384$8$1$c2FsdA==$aGFzaA==', createdAt: '2026-12-07T05:00:00.000Z' }),
  obj('UnitPeers', 'site-a', { peers: [{ node: 'edge-a1', endpoint: '10.0.0.5:7411' }, { node: 'edge-a2', endpoint: '[fd00::2]:7411' }], credential: 'peer-secret' }),
  obj('AppRevision', 'hello-1', { app: 'hello', revision: 1, template, overrides: [{ units: { names: ['site-b'] }, replicas: 2, patches: [{ op: 'add', path: '/processes/0/env/SITE', value: '{{unit}}' }] }], hash: 'abc123' }),
];

/** One object of every kind; metadata holds only name and labels (what a client may send on create). */
export function exampleOfEveryKind(): AnyObject[] {
  const fromFiles = FROM_EXAMPLES.flatMap((f) => parseManifests(readFileSync(`${EXAMPLES}${f}`, 'utf8'), f)) as AnyObject[];
  const seen = new Set<string>();
  const out: AnyObject[] = [];
  for (const o of [...fromFiles, ...BUILT]) {
    if (seen.has(o.kind)) continue;
    seen.add(o.kind);
    const copy = structuredClone(o);
    for (const k of SERVER_SET) delete copy.metadata[k];
    out.push(copy);
  }
  return out;
}
