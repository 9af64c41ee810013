import type { Command } from 'commander';
import type { AnyObject, Device, DeviceModel, Property, PropertyValue } from '../../shared/api/index.js';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import { toYaml } from '../../shared/yaml.js';
import { API_PREFIX, type HubClient } from '../client.js';
import { age, table } from '../format.js';

const devicePath = (name: string) => `${API_PREFIX}/devices/${encodeURIComponent(name)}`;

interface TelemetryLine { device: string; node: string; seq: number; timestamp: string; values: Record<string, PropertyValue> }

/** `outpost device set | credentials | telemetry`. */
export function registerDevices(program: Command, client: () => HubClient): void {
  const print = (text: string): void => { process.stdout.write(`${text}\n`); };
  const device = program.command('device').description('IoT devices: desired twin, MQTT credentials, telemetry');
  device
    .command('set <name> <assignments...>')
    .description('set desired properties (prop=value; typed by the device\'s model, ReadWrite properties only)')
    .action(async (name: string, assignments: string[]) => print(await setDesired(client(), name, assignments)));
  device
    .command('credentials <name>')
    .description('create or rotate the device\'s MQTT username and password; the password is shown this once')
    .action(async (name: string) => print(await rotateCredentials(client(), name)));
  device
    .command('telemetry <name>')
    .description('telemetry stored at the hub, oldest first')
    .option('--since <duration>', 'every message newer than this (read page by page), e.g. 10m, 2h')
    .option('--limit <n>', 'only the newest n messages (default 100 without --since)')
    .option('-f, --follow', 'keep printing new messages until Ctrl-C')
    .option('-o, --output <format>', 'table or json (JSON lines)', 'table')
    .action(async (name: string, o: TelemetryOptions) => {
      await telemetry(client(), name, o, (line) => process.stdout.write(`${line}\n`));
    });
}

/** Parses `prop=value` by the property's type; refuses unknown and ReadOnly properties with the reason. */
export function parseAssignment(text: string, model: DeviceModel | undefined): [string, PropertyValue] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new OutpostError('BAD_REQUEST', `"${text}": expected prop=value`);
  const name = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  if (!model) return [name, guessValue(raw)];
  const prop = model.spec.properties.find((p) => p.name === name);
  if (!prop) throw new OutpostError('BAD_REQUEST', `${name}: model ${model.metadata.name} has no such property (it has ${model.spec.properties.map((p) => p.name).join(', ')})`);
  if (prop.access !== 'ReadWrite') throw new OutpostError('BAD_REQUEST', `${name} is ReadOnly in model ${model.metadata.name}: the device reports it, it cannot be set`);
  return [name, typedValue(prop, raw)];
}

function typedValue(prop: Property, raw: string): PropertyValue {
  switch (prop.type) {
    case 'int':
      if (!/^-?\d+$/.test(raw)) throw new OutpostError('BAD_REQUEST', `${prop.name} is an int, not "${raw}"`);
      return Number(raw);
    case 'float':
      if (raw.trim() === '' || !Number.isFinite(Number(raw))) throw new OutpostError('BAD_REQUEST', `${prop.name} is a number, not "${raw}"`);
      return Number(raw);
    case 'bool':
      if (raw !== 'true' && raw !== 'false') throw new OutpostError('BAD_REQUEST', `${prop.name} is a bool: true or false, not "${raw}"`);
      return raw === 'true';
    case 'enum':
      if (!prop.enum?.includes(raw)) throw new OutpostError('BAD_REQUEST', `${prop.name} is one of ${(prop.enum ?? []).join(', ')}, not "${raw}"`);
      return raw;
    case 'string':
      return raw;
  }
}

/** Without a model (not applied yet): numbers and true/false as such, anything else a string. */
function guessValue(raw: string): PropertyValue {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  return raw;
}

async function getModel(client: HubClient, name: string): Promise<DeviceModel | undefined> {
  return client.request<DeviceModel>('GET', `${API_PREFIX}/devicemodels/${encodeURIComponent(name)}`).catch((err: unknown) => {
    if (isOutpostError(err, 'NOT_FOUND')) return undefined;
    throw err;
  });
}

/** Read-modify-write of spec.desired with the resourceVersion as precondition (retried on conflict). */
export async function setDesired(client: HubClient, name: string, assignments: string[]): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const device = await client.request<Device>('GET', devicePath(name));
    const model = await getModel(client, device.spec.model);
    const values = Object.fromEntries(assignments.map((a) => parseAssignment(a, model)));
    const { status: _status, ...body } = device;
    try {
      const updated = await client.request<Device>('PUT', devicePath(name), { ...body, spec: { ...device.spec, desired: { ...(device.spec.desired ?? {}), ...values } } });
      const warning = updated.status?.message ? `\nwarning: ${updated.status.message}` : '';
      return `device/${name} desired ${Object.entries(values).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')} (version ${updated.metadata.generation ?? '?'})${warning}`;
    } catch (err) {
      if (isOutpostError(err, 'CONFLICT') && attempt < 5) continue;
      throw err;
    }
  }
}

export async function rotateCredentials(client: HubClient, name: string): Promise<string> {
  const res = await client.request<{ username: string; password: string }>('POST', `${devicePath(name)}/credentials`);
  process.stderr.write(`new credential for device ${name}; the password is not stored in clear and is shown only now (agents get the hash)\n`);
  return `username: ${res.username}\npassword: ${res.password}`;
}

export interface TelemetryOptions {
  since?: string;
  limit?: string;
  follow?: boolean;
  output: string;
  /** Rows per page when reading everything since a time (default 5 000; tests use small pages). */
  pageSize?: number;
}

function telemetryQuery(o: { since?: string; limit?: string; follow?: boolean; after?: string }): string {
  const q = new URLSearchParams();
  if (o.since) { parseDuration(o.since, '--since'); q.set('since', o.since); }
  if (o.limit !== undefined) {
    if (!/^\d+$/.test(o.limit) || Number(o.limit) < 1) throw new OutpostError('BAD_REQUEST', `--limit ${o.limit}: expected a positive number`);
    q.set('limit', o.limit);
  }
  if (o.after !== undefined) q.set('after', o.after);
  if (o.follow) q.set('follow', 'true');
  return q.toString();
}

const valuesText = (v: Record<string, PropertyValue>) => Object.entries(v).map(([k, x]) => `${k}=${typeof x === 'string' ? JSON.stringify(x) : String(x)}`).join(' ');
const telemetryTable = (rows: TelemetryLine[]) => table(['TIME', 'NODE', 'SEQ', 'VALUES'], rows.map((r) => [r.timestamp, r.node, String(r.seq), valuesText(r.values)]));
const telemetryLine = (r: TelemetryLine) => `${r.timestamp}   ${r.node}   ${r.seq}   ${valuesText(r.values)}`;
const STREAM_HEADER = 'TIME   NODE   SEQ   VALUES';
/** Pages of this many rows when reading everything since a time. */
const PAGE = 5000;
/** Bound on pages read in one command: 10 000 pages of 5 000 rows. */
const MAX_PAGES = 10_000;

interface TelemetryPage { items: TelemetryLine[]; next: string; more: boolean }

/**
 * `--limit N` (or neither flag): the newest N rows, as a table. `--since D` without `--limit`:
 * every stored row newer than D, read page by page with the API's cursor, printed as it comes.
 * `-f` then follows from where the reading ended.
 */
export async function telemetry(client: HubClient, name: string, o: TelemetryOptions, out: (line: string) => void): Promise<void> {
  if (o.output !== 'table' && o.output !== 'json') throw new OutpostError('BAD_REQUEST', `-o ${o.output}: use table or json`);
  const path = `${devicePath(name)}/telemetry`;
  const json = o.output === 'json';
  let cursor: string;
  if (o.since !== undefined && o.limit === undefined) {
    if (!json) out(STREAM_HEADER);
    cursor = '0';
    let printed = 0;
    for (let pages = 0; pages < MAX_PAGES; pages++) {
      const page = await client.request<TelemetryPage>('GET', `${path}?${telemetryQuery({ since: o.since, limit: String(o.pageSize ?? PAGE), after: cursor })}`);
      for (const r of page.items) out(json ? JSON.stringify(r) : telemetryLine(r));
      printed += page.items.length;
      cursor = page.next;
      if (!page.more) break;
    }
    if (printed === 0 && !json && !o.follow) out(`No telemetry for device ${name} in the last ${o.since}.`);
  } else {
    const page = await client.request<TelemetryPage>('GET', `${path}?${telemetryQuery({ ...(o.since ? { since: o.since } : {}), limit: o.limit ?? '100' })}`);
    if (json) for (const r of page.items) out(JSON.stringify(r));
    else if (o.follow) { out(STREAM_HEADER); for (const r of page.items) out(telemetryLine(r)); }
    else out(page.items.length ? telemetryTable(page.items) : `No telemetry for device ${name}.`);
    cursor = page.next;
  }
  if (!o.follow) return;
  const query = telemetryQuery({ ...(o.since ? { since: o.since } : {}), after: cursor, follow: true });
  const res = await client.raw('GET', `${path}?${query}`);
  if (!res.ok || !res.body) {
    await client.request('GET', `${path}?${telemetryQuery({ ...(o.since ? { since: o.since } : {}), after: cursor })}`); // throws the hub's error
    throw new OutpostError('UNAVAILABLE', `telemetry follow failed: HTTP ${res.status}`);
  }
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line) out(json ? line : telemetryLine(JSON.parse(line) as TelemetryLine));
      nl = buffer.indexOf('\n');
    }
  }
}

/** `outpost describe device X`: spec, the reported twin with units and desired values, the last 10 telemetry rows. */
export async function describeDevice(client: HubClient, name: string): Promise<string> {
  const device = await client.request<Device>('GET', devicePath(name));
  const model = await getModel(client, device.spec.model);
  const { status, ...rest } = device;
  const summary: AnyObject = { ...rest, ...(status ? { status: { ...status, reported: undefined } } : {}) } as AnyObject;
  const out = [toYaml(JSON.parse(JSON.stringify(summary)) as unknown).trimEnd()];
  if (!model) out.push('', `Model: ${device.spec.model} (not found: values are shown unchecked)`);
  const props = new Set([...(model?.spec.properties.map((p) => p.name) ?? []), ...Object.keys(status?.reported ?? {}), ...Object.keys(device.spec.desired ?? {})]);
  const rows = [...props].map((p) => {
    const prop = model?.spec.properties.find((x) => x.name === p);
    const rep = status?.reported?.[p];
    const desired = device.spec.desired?.[p];
    return [p, rep === undefined ? '-' : String(rep.value), prop?.unit ?? '', desired === undefined ? '-' : String(desired), prop?.access ?? '?', rep ? age(rep.timestamp) : '-'];
  });
  out.push('', `Twin (desired version ${device.metadata.generation ?? '?'}, observed ${status?.observedDesired ?? '-'}):`);
  out.push(indent(rows.length ? table(['PROPERTY', 'REPORTED', 'UNIT', 'DESIRED', 'ACCESS', 'AGE'], rows) : '<none>'));
  const tel = await client.request<{ items: TelemetryLine[] }>('GET', `${devicePath(name)}/telemetry?limit=10`);
  out.push('', 'Telemetry (last 10):', indent(tel.items.length ? telemetryTable(tel.items) : '<none>'));
  return out.join('\n');
}

const indent = (s: string) => s.split('\n').map((l) => `  ${l}`).join('\n');
