import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { KINDS, resolveKind, validateObject, type AnyObject, type EdgeApp, type EdgeNode, type Instance, type KindInfo } from '../../shared/api/index.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import { parseManifests, toYaml } from '../../shared/yaml.js';
import { API_PREFIX, type HubClient } from '../client.js';
import { age, objectTable, table } from '../format.js';

export function kindOrThrow(word: string): KindInfo {
  const info = resolveKind(word);
  if (!info) {
    const names = KINDS.map((k) => `${k.plural} (${[k.singular, ...k.shortNames].join(', ')})`).join('; ');
    throw new OutpostError('UNKNOWN_KIND', `unknown kind "${word}"; known kinds: ${names}`);
  }
  return info;
}

type Output = 'table' | 'wide' | 'json' | 'yaml';
export function parseOutput(o: string): Output {
  if (o === 'table' || o === 'wide' || o === 'json' || o === 'yaml') return o;
  throw new OutpostError('BAD_REQUEST', `-o ${o}: use table, wide, json or yaml`);
}

export async function getCommand(client: HubClient, kindWord: string, name: string | undefined, opts: { output: string; selector?: string; showSecrets?: boolean }): Promise<string> {
  const info = kindOrThrow(kindWord);
  const output = parseOutput(opts.output);
  // EdgeConfig secret values come back as <redacted> unless asked for.
  const secrets = opts.showSecrets ? 'showSecrets=true' : '';
  if (name) {
    const obj = await client.request<AnyObject>('GET', `${API_PREFIX}/${info.plural}/${encodeURIComponent(name)}${secrets ? `?${secrets}` : ''}`);
    if (output === 'json') return JSON.stringify(obj, null, 2);
    if (output === 'yaml') return toYaml(obj).trimEnd();
    return objectTable(info.kind, [obj], output === 'wide');
  }
  const params = [...(opts.selector ? [`labelSelector=${encodeURIComponent(opts.selector)}`] : []), ...(secrets ? [secrets] : [])];
  const query = params.length ? `?${params.join('&')}` : '';
  const list = await client.request<{ items: AnyObject[] }>('GET', `${API_PREFIX}/${info.plural}${query}`);
  if (output === 'json') return JSON.stringify(list, null, 2);
  if (output === 'yaml') return toYaml({ apiVersion: 'v1', kind: 'List', items: list.items }).trimEnd();
  if (list.items.length === 0) return `No ${info.plural} found.`;
  return objectTable(info.kind, list.items, output === 'wide');
}

export async function deleteCommand(client: HubClient, kindWord: string, name: string): Promise<string> {
  const info = kindOrThrow(kindWord);
  await client.request('DELETE', `${API_PREFIX}/${info.plural}/${encodeURIComponent(name)}`);
  return `${info.singular} "${name}" deleted`;
}

/** Reads manifests from a file, a directory (its .yaml/.yml/.json files, sorted) or stdin ('-'). */
export function readManifestSources(path: string): { source: string; text: string }[] {
  if (path === '-') return [{ source: 'stdin', text: readFileSync(0, 'utf8') }];
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new OutpostError('BAD_REQUEST', `cannot read ${path}: no such file or directory`);
  }
  if (!st.isDirectory()) return [{ source: path, text: readFileSync(path, 'utf8') }];
  return readdirSync(path)
    .filter((f) => ['.yaml', '.yml', '.json'].includes(extname(f)))
    .sort()
    .map((f) => ({ source: join(path, f), text: readFileSync(join(path, f), 'utf8') }));
}

/**
 * Validates every document first (so a bad file changes nothing), then applies them in kind
 * order (units before apps). Prints `kind/name created|configured|unchanged`.
 */
export async function applyCommand(client: HubClient, paths: string[]): Promise<string[]> {
  const objects: { obj: AnyObject; info: KindInfo }[] = [];
  for (const p of paths) {
    for (const { source, text } of readManifestSources(p)) {
      const docs = parseManifests(text, source);
      docs.forEach((doc, i) => {
        try {
          const obj = validateObject(doc);
          const info = kindOrThrow(obj.kind);
          if (!info.operatorWritable) throw new OutpostError('METHOD_NOT_ALLOWED', `${obj.kind} objects are managed by the hub and cannot be applied`);
          objects.push({ obj, info });
        } catch (err) {
          if (isOutpostError(err)) throw new OutpostError(err.code === 'OUTPOST_INVALID' ? 'INVALID' : 'BAD_REQUEST', `${source}: document ${i + 1}: ${err.message}`, err.fields ? { fields: err.fields } : {});
          throw err;
        }
      });
    }
  }
  if (objects.length === 0) throw new OutpostError('BAD_REQUEST', `no objects found in ${paths.join(', ')}`);
  // Configs go before the apps that use them (between units and apps), so no instance waits for its config.
  const order = (k: string) => (k === 'EdgeConfig' ? KINDS.findIndex((x) => x.kind === 'EdgeApp') - 0.5 : KINDS.findIndex((x) => x.kind === k));
  objects.sort((a, b) => order(a.obj.kind) - order(b.obj.kind));
  const lines: string[] = [];
  for (const { obj, info } of objects) {
    const path = `${API_PREFIX}/${info.plural}/${encodeURIComponent(obj.metadata.name)}`;
    const before = await client.request<AnyObject>('GET', path).catch((err: unknown) => {
      if (isOutpostError(err, 'NOT_FOUND')) return undefined;
      throw err;
    });
    const after = await client.request<AnyObject>('PUT', path, obj);
    const verb = !before ? 'created' : before.metadata.resourceVersion === after.metadata.resourceVersion ? 'unchanged' : 'configured';
    lines.push(`${info.singular}/${obj.metadata.name} ${verb}`);
  }
  return lines;
}

interface HubEventRow { node: string; type: string; reason: string; message: string; object: { kind: string; name: string }; time: string }

function eventsTable(events: HubEventRow[]): string {
  if (events.length === 0) return '  <none>';
  return table(['AGE', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'], events.slice(-15).map((e) => [age(e.time), e.type, e.reason, `${e.object.kind.toLowerCase()}/${e.object.name}`, e.message]))
    .split('\n').map((l) => `  ${l}`).join('\n');
}

/** A human summary of one object and what relates to it. */
export async function describeCommand(client: HubClient, kindWord: string, name: string): Promise<string> {
  const info = kindOrThrow(kindWord);
  const obj = await client.request<AnyObject>('GET', `${API_PREFIX}/${info.plural}/${encodeURIComponent(name)}`);
  const out: string[] = [toYaml(obj).trimEnd()];
  const indent = (s: string) => s.split('\n').map((l) => `  ${l}`).join('\n');
  const instances = async (field: string, value: string) =>
    (await client.request<{ items: Instance[] }>('GET', `${API_PREFIX}/instances?fieldSelector=${encodeURIComponent(`${field}=${value}`)}`)).items;
  if (info.kind === 'EdgeApp') {
    out.push('', 'Instances:', indent(objectTable('Instance', await instances('spec.app', name), false)));
  } else if (info.kind === 'EdgeNode') {
    out.push('', 'Instances:', indent(objectTable('Instance', await instances('spec.node', name), false)));
    const ev = await client.request<{ items: HubEventRow[] }>('GET', `${API_PREFIX}/events?node=${encodeURIComponent(name)}&limit=15`);
    out.push('', 'Events:', eventsTable(ev.items));
  } else if (info.kind === 'NodeUnit') {
    const nodes = (await client.request<{ items: EdgeNode[] }>('GET', `${API_PREFIX}/edgenodes?fieldSelector=${encodeURIComponent(`spec.unit=${name}`)}`)).items;
    const apps = (await client.request<{ items: EdgeApp[] }>('GET', `${API_PREFIX}/edgeapps`)).items.filter((a) => a.status?.units?.some((u) => u.unit === name));
    out.push('', 'Nodes:', indent(nodes.length ? objectTable('EdgeNode', nodes, false) : '<none>'));
    out.push('', 'Apps:', indent(apps.length ? objectTable('EdgeApp', apps, false) : '<none>'));
  } else if (info.kind === 'Instance') {
    const ev = await client.request<{ items: HubEventRow[] }>('GET', `${API_PREFIX}/events?object=${encodeURIComponent(name)}&limit=15`);
    out.push('', 'Events:', eventsTable(ev.items));
  }
  return out.join('\n');
}

export async function eventsCommand(client: HubClient, opts: { node?: string; object?: string }): Promise<string> {
  const q = new URLSearchParams();
  if (opts.node) q.set('node', opts.node);
  if (opts.object) q.set('object', opts.object);
  const ev = await client.request<{ items: (HubEventRow & { node: string })[] }>('GET', `${API_PREFIX}/events?${q.toString()}`);
  if (ev.items.length === 0) return 'No events found.';
  return table(['AGE', 'NODE', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'], ev.items.map((e) => [age(e.time), e.node, e.type, e.reason, `${e.object.kind.toLowerCase()}/${e.object.name}`, e.message]));
}
