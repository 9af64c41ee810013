import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OutpostError } from '../../shared/errors.js';
import { processExists } from '../../shared/process.js';
import { table } from '../format.js';

interface InstanceView { phase: string; pid?: number; restarts?: number; ready?: boolean; message?: string }
interface StatusDoc {
  node: string; unit: string; hub?: string; cloud?: string; cloudError?: string; appliedRevision: number; outboxDepth: number;
  droppedEvents?: number; cache?: { status: string; reason: string; message: string }; instances: Record<string, InstanceView>;
}

/** What the files say when the agent is not running (read-only; nothing is changed). */
function offlineStatus(dir: string): StatusDoc {
  const credFile = join(dir, 'credential.json');
  if (!existsSync(credFile)) throw new OutpostError('NOT_FOUND', `${dir} is not an agent data directory (no credential.json): the node has not joined yet`);
  const cred = JSON.parse(readFileSync(credFile, 'utf8')) as { node: string; unit: string; hub: string };
  const doc: StatusDoc = { node: cred.node, unit: cred.unit, hub: cred.hub, cloud: 'unknown (agent not running)', appliedRevision: 0, outboxDepth: 0, instances: {} };
  if (existsSync(join(dir, 'cache.db'))) {
    const db = new Database(join(dir, 'cache.db'), { readonly: true, fileMustExist: true });
    try {
      doc.appliedRevision = Number((db.prepare("SELECT value FROM agent_meta WHERE key = 'applied_revision'").get() as { value?: string } | undefined)?.value ?? 0);
      doc.outboxDepth = (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
      for (const r of db.prepare("SELECT name FROM desired_objects WHERE kind = 'Instance'").all() as { name: string }[]) doc.instances[r.name] = { phase: 'Unknown' };
    } finally {
      db.close();
    }
  }
  if (existsSync(join(dir, 'runtime.db'))) {
    const db = new Database(join(dir, 'runtime.db'), { readonly: true, fileMustExist: true });
    try {
      for (const r of db.prepare('SELECT name, pid, restarts FROM runtime_instances').all() as { name: string; pid: number | null; restarts: number }[]) {
        const running = r.pid !== null && processExists(r.pid);
        doc.instances[r.name] = { phase: running ? 'Running (unsupervised)' : 'Stopped', restarts: r.restarts, ...(running && r.pid !== null ? { pid: r.pid } : {}) };
      }
    } finally {
      db.close();
    }
  }
  return doc;
}

/** `outpost agent status --data DIR`: the agent's own view, for an operator at the site. */
export async function agentStatusCommand(o: { data: string; output?: string }): Promise<string> {
  const dir = resolve(o.data);
  const infoFile = join(dir, 'agent.json');
  let doc: StatusDoc;
  let agentLine: string;
  const info = existsSync(infoFile) ? (JSON.parse(readFileSync(infoFile, 'utf8')) as { pid: number; localApi: string }) : undefined;
  if (info && processExists(info.pid)) {
    const res = await fetch(`${info.localApi}/v1/status`, { signal: AbortSignal.timeout(5000) }).catch((cause: unknown) => {
      throw new OutpostError('UNAVAILABLE', `agent pid ${info.pid} runs but its local API ${info.localApi} does not answer: ${(cause as Error).message}`);
    });
    doc = (await res.json()) as StatusDoc;
    agentLine = `running (pid ${info.pid}, local API ${info.localApi})`;
  } else {
    doc = offlineStatus(dir);
    agentLine = 'not running (read from its files)';
  }
  if (o.output === 'json') return JSON.stringify(doc, null, 2);
  const lines = [
    `node:      ${doc.node} (unit ${doc.unit})`,
    `agent:     ${agentLine}`,
    `cloud:     ${doc.cloud ?? '-'}${doc.cloudError ? ` (${doc.cloudError})` : ''}`,
    `revision:  ${doc.appliedRevision}`,
    `outbox:    ${doc.outboxDepth} waiting${doc.droppedEvents ? `, ${doc.droppedEvents} events dropped` : ''}`,
    ...(doc.cache ? [`cache:     ${doc.cache.status === 'True' ? 'healthy' : 'NOT healthy'} (${doc.cache.reason}: ${doc.cache.message})`] : []),
    '',
    Object.keys(doc.instances).length === 0
      ? 'no instances'
      : table(['INSTANCE', 'PHASE', 'PID', 'RESTARTS', 'MESSAGE'], Object.entries(doc.instances).map(([n, s]) => [n, s.phase, String(s.pid ?? '-'), String(s.restarts ?? 0), s.message ?? ''])),
  ];
  return lines.join('\n');
}
