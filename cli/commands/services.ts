import { OutpostError } from '../../shared/errors.js';
import { toYaml } from '../../shared/yaml.js';
import { API_PREFIX, type HubClient } from '../client.js';
import { table } from '../format.js';
import { parseOutput } from './resources.js';

/** The words `get` and `describe` accept for the hub's service view (not a stored kind). */
export const SERVICE_WORDS = new Set(['services', 'service', 'svc']);

interface ServiceSummary { service: string; units: string[]; healthy: number; total: number }
interface ServiceInstanceRow {
  service: string; id: string; node: string; unit: string; address: string; port: number; protocol: string;
  weight: number; health: string; metadata: Record<string, string>; lease: { kind: string; ttlMs?: number; instance?: string };
  version: { incarnation: number; counter: number }; nodePhase: string;
}
interface ServiceDetail { service: string; units: string[]; healthy: number; total: number; instances: ServiceInstanceRow[] }

const path = (name?: string) => `${API_PREFIX}/services${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

/** `outpost get services [NAME] [-o ...]`: every service across units, or one service's instances. */
export async function getServicesCommand(client: HubClient, name: string | undefined, opts: { output: string }): Promise<string> {
  const output = parseOutput(opts.output);
  if (name !== undefined) {
    const detail = await client.request<ServiceDetail>('GET', path(name));
    if (output === 'json') return JSON.stringify(detail, null, 2);
    if (output === 'yaml') return toYaml(detail).trimEnd();
    return instancesTable(detail.instances, output === 'wide');
  }
  const list = await client.request<{ items: ServiceSummary[] }>('GET', path());
  if (output === 'json') return JSON.stringify(list, null, 2);
  if (output === 'yaml') return toYaml(list).trimEnd();
  if (list.items.length === 0) return 'No services found.';
  return table(['NAME', 'UNITS', 'HEALTHY', 'INSTANCES'], list.items.map((s) => [s.service, s.units.join(','), String(s.healthy), String(s.total)]));
}

function instancesTable(rows: ServiceInstanceRow[], wide: boolean): string {
  return table(
    ['UNIT', 'NODE', 'ID', 'ADDRESS', 'PROTOCOL', 'HEALTH', 'NODE-PHASE', ...(wide ? ['WEIGHT', 'LEASE', 'VERSION', 'METADATA'] : [])],
    rows.map((i) => [
      i.unit, i.node, i.id, `${i.address.includes(':') ? `[${i.address}]` : i.address}:${i.port}`, i.protocol, i.health, i.nodePhase,
      ...(wide ? [String(i.weight), i.lease.kind === 'ttl' ? `ttl ${(i.lease.ttlMs ?? 0) / 1000}s` : `process ${i.lease.instance ?? ''}`, `${i.version.incarnation}.${i.version.counter}`,
        Object.entries(i.metadata).map(([k, v]) => `${k}=${v}`).join(',') || '-'] : []),
    ]),
  );
}

/** `outpost describe service NAME`: counts per unit, then every instance. */
export async function describeServiceCommand(client: HubClient, name: string): Promise<string> {
  if (!name) throw new OutpostError('BAD_REQUEST', 'describe service needs a service name');
  const d = await client.request<ServiceDetail>('GET', path(name));
  const perUnit = d.units.map((u) => {
    const list = d.instances.filter((i) => i.unit === u);
    return [u, String(list.filter((i) => i.health === 'passing').length), String(list.length), String(new Set(list.map((i) => i.node)).size)];
  });
  const indent = (s: string) => s.split('\n').map((l) => `  ${l}`).join('\n');
  return [
    `Name:       ${d.service}`,
    `Units:      ${d.units.join(', ')}`,
    `Instances:  ${d.healthy} healthy / ${d.total}`,
    '',
    'Per unit:',
    indent(table(['UNIT', 'HEALTHY', 'INSTANCES', 'NODES'], perUnit)),
    '',
    'Instances:',
    indent(instancesTable(d.instances, true)),
  ].join('\n');
}
