import type { EdgeNode } from '../../shared/api/index.js';
import { OutpostError } from '../../shared/errors.js';
import type { ObjectCache } from '../cache/object-cache.js';

/** "site-b/node-3 is disconnected since 10:42 UTC; logs are available on the node at ..." */
export function disconnectedError(cache: ObjectCache, node: string, instance?: string, logDir?: string): OutpostError {
  const n = cache.get('EdgeNode', node) as EdgeNode | undefined;
  if (!n) return new OutpostError('NOT_FOUND', `node ${node} not found`);
  const since = n.status?.since ?? n.status?.lastSeen;
  const when = since ? ` since ${formatSince(since)}` : '';
  const where = `${logDir ?? '<agent data dir>/logs'}/${instance ?? '<instance>'}/current.log`;
  return new OutpostError('NODE_DISCONNECTED', `${n.spec.unit}/${node} is disconnected${when}; logs are available on the node at ${where}`);
}

/** HH:MM UTC today, or the full date when it is another day. */
function formatSince(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date().toISOString().slice(0, 10);
  const day = d.toISOString().slice(0, 10);
  const hm = d.toISOString().slice(11, 16);
  return day === today ? `${hm} UTC` : `${day} ${hm} UTC`;
}
