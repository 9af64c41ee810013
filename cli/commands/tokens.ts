import { parseLabelPairs } from '../../shared/labels.js';
import { OutpostError } from '../../shared/errors.js';
import { API_PREFIX, type HubClient } from '../client.js';
import { age, table } from '../format.js';

export async function tokenCreateCommand(client: HubClient, o: { unit: string; ttl: string; uses: string; description?: string; labels?: string }): Promise<string> {
  let uses: number | null;
  if (o.uses === 'unlimited') uses = null;
  else if (/^\d+$/.test(o.uses) && Number(o.uses) >= 1) uses = Number(o.uses);
  else throw new OutpostError('BAD_REQUEST', `--uses ${o.uses}: expected a positive number or "unlimited"`);
  const res = await client.request<{ token: string; id: string; expiresAt: string | null }>('POST', `${API_PREFIX}/jointokens`, {
    unit: o.unit, ttl: o.ttl, uses, ...(o.description ? { description: o.description } : {}), ...(o.labels ? { labels: parseLabelPairs(o.labels) } : {}),
  });
  process.stderr.write(`join token ${res.id} for unit ${o.unit}, ${uses === null ? 'unlimited uses' : `${uses} use(s)`}, expires ${res.expiresAt ?? 'never'}\n`);
  return res.token;
}

export async function tokenListCommand(client: HubClient): Promise<string> {
  const res = await client.request<{ items: { id: string; unit: string; expiresAt: string | null; usesLeft: number | null; createdAt: string; description: string; labels?: Record<string, string> }[] }>('GET', `${API_PREFIX}/jointokens`);
  if (res.items.length === 0) return 'No join tokens.';
  return table(['ID', 'UNIT', 'USES-LEFT', 'EXPIRES', 'AGE', 'LABELS', 'DESCRIPTION'], res.items.map((t) => [
    t.id, t.unit, t.usesLeft === null ? 'unlimited' : String(t.usesLeft), t.expiresAt ?? 'never', age(t.createdAt),
    Object.entries(t.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '-', t.description,
  ]));
}

export async function tokenDeleteCommand(client: HubClient, id: string): Promise<string> {
  await client.request('DELETE', `${API_PREFIX}/jointokens/${encodeURIComponent(id)}`);
  return `join token ${id} deleted`;
}
