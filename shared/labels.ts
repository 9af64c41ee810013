import { OutpostError } from './errors.js';

/** One requirement of an equality-based label selector (the Kubernetes string form). */
export type LabelRequirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'exists' | 'notexists' };

/** Parses `a=b,c!=d,e,!f` (also `==`). Throws BAD_REQUEST naming the bad term. */
export function parseLabelSelector(text: string): LabelRequirement[] {
  const out: LabelRequirement[] = [];
  for (const raw of text.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    const m = /^(!?)([A-Za-z0-9./_-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*))?$/.exec(term);
    if (!m) throw new OutpostError('BAD_REQUEST', `label selector: cannot parse "${term}" (use key=value, key!=value, key or !key)`);
    const [, bang, key = '', op, value = ''] = m;
    if (bang && op) throw new OutpostError('BAD_REQUEST', `label selector: "${term}" mixes ! with an operator`);
    if (op) out.push({ key, op: op === '!=' ? 'neq' : 'eq', value });
    else out.push({ key, op: bang ? 'notexists' : 'exists' });
  }
  return out;
}

export function matchesRequirements(labels: Record<string, string> | undefined, reqs: LabelRequirement[]): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'eq': return has && l[r.key] === r.value;
      case 'neq': return !has || l[r.key] !== r.value;
      case 'exists': return has;
      case 'notexists': return !has;
    }
  });
}

/** `matchLabels` semantics: every pair must be present; an empty selector matches everything. */
export function matchesLabels(labels: Record<string, string> | undefined, matchLabels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return Object.entries(matchLabels ?? {}).every(([k, v]) => l[k] === v);
}

/** Parses `k=v,k2=v2` as given on the command line (`--labels`). */
export function parseLabelPairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    const eq = term.indexOf('=');
    if (eq <= 0) throw new OutpostError('BAD_REQUEST', `labels: "${term}" is not key=value`);
    out[term.slice(0, eq)] = term.slice(eq + 1);
  }
  return out;
}
