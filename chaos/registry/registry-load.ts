// The registry scenario's clients: per agent a worker registering, updating and deregistering
// instances over HTTP (recording only what was acknowledged into the model), and per (agent,
// service) an SSE subscriber that reconnects after every agent restart.
import { request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { ChaosCluster } from '../cluster.js';
import { httpRequest } from '../http.js';
import type { Rng } from '../rng.js';
import type { RegistryModel, SeenInstance, Subscriber } from './registry-model.js';

export const SERVICES = ['pos', 'cam', 'db'];

export interface OpCounts {
  acked: number;
  unacked: number;
  refused: number;
}

/** Runs one agent's operations until `signal` aborts; returns what happened. */
export async function runWorker(deps: { cluster: ChaosCluster; model: RegistryModel; rng: Rng; agent: string }, signal: AbortSignal): Promise<OpCounts> {
  const counts: OpCounts = { acked: 0, unacked: 0, refused: 0 };
  const { cluster, model, rng, agent } = deps;
  let seq = 0;
  while (!signal.aborted) {
    await delay(rng.int(80, 250));
    const api = cluster.localApi(agent);
    if (!api || cluster.agentState(agent) !== 'running') continue;
    const live = model.liveKeysOf(agent);
    const roll = rng.float();
    const call = async (method: string, path: string, body?: unknown): Promise<'acked' | 'unacked' | 'refused'> => {
      try {
        const res = await httpRequest(`${api}${path}`, { method, timeoutMs: 2_000, headers: { 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
        return res.status === 200 ? 'acked' : 'refused';
      } catch {
        return 'unacked';
      }
    };
    if (roll < 0.6 || live.length < 3) {
      const service = rng.pick(SERVICES);
      const id = `${agent}-${++seq}`;
      const port = rng.int(1024, 65000);
      const r = await call('PUT', `/v1/registry/services/${service}/instances/${id}`, { address: '10.9.0.1', port, ttl: '1h' });
      if (r !== 'refused') model.register(agent, service, id, port, r === 'acked', Date.now());
      counts[r]++;
    } else if (roll < 0.8) {
      const key = rng.pick(live);
      const [service, id] = key.split('/') as [string, string];
      const port = rng.int(1024, 65000);
      const r = await call('PUT', `/v1/registry/services/${service}/instances/${id}`, { address: '10.9.0.1', port, ttl: '1h' });
      if (r !== 'refused') model.register(agent, service, id, port, r === 'acked', Date.now());
      counts[r]++;
    } else {
      const key = rng.pick(live);
      const [service, id] = key.split('/') as [string, string];
      const r = await call('DELETE', `/v1/registry/services/${service}/instances/${id}`);
      if (r !== 'refused') model.deregister(key, r === 'acked');
      counts[r]++;
    }
  }
  return counts;
}

/** Follows `?watch=true&all=true` of one service on one agent, reconnecting while `signal` is not aborted. */
export async function runSubscriber(deps: { cluster: ChaosCluster; subscriber: Subscriber }, signal: AbortSignal): Promise<void> {
  const { cluster, subscriber } = deps;
  while (!signal.aborted) {
    const api = cluster.localApi(subscriber.agent);
    if (!api || cluster.agentState(subscriber.agent) !== 'running') {
      await delay(100);
      continue;
    }
    const connection = { opened: Date.now(), events: [] as Subscriber['connections'][number]['events'] };
    await readStream(`${api}/v1/registry/services/${subscriber.service}?watch=true&all=true`, signal, (index, instances) => {
      if (connection.events.length === 0) subscriber.connections.push(connection);
      connection.events.push({ index, at: Date.now(), instances });
    });
    await delay(100);
  }
}

/** One SSE connection until it ends, fails, stays silent for 30 s, or `signal` aborts. */
function readStream(url: string, signal: AbortSignal, onEvent: (index: number, instances: SeenInstance[]) => void): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { Accept: 'text/event-stream' }, agent: false });
    let idle: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(idle);
      signal.removeEventListener('abort', finish);
      req.destroy();
      resolve();
    };
    // A SIGSTOPped agent sends nothing, not even keep-alives (every 15 s): give up and reconnect.
    const arm = () => { clearTimeout(idle); idle = setTimeout(finish, 30_000); };
    signal.addEventListener('abort', finish, { once: true });
    req.on('error', finish);
    req.on('response', (res) => {
      if (res.statusCode !== 200) return finish();
      arm();
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        arm();
        buffer += chunk;
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          try {
            const parsed = JSON.parse(data.slice(6)) as { index: number; result: { instances: SeenInstance[] } };
            onEvent(parsed.index, parsed.result.instances.map((x) => ({ id: x.id, port: x.port, health: x.health, ...(x.version ? { version: x.version } : {}) })));
          } catch {
            // a malformed event is the agent's bug; the checks see it as a gap
          }
        }
      });
      res.on('end', finish);
      res.on('error', finish);
    });
    req.end();
  });
}

/** Every agent's current answer for every service (`?all=true`), keyed by record key; undefined for an agent that did not answer. */
export async function readViews(cluster: ChaosCluster, agents: string[]): Promise<Map<string, Map<string, SeenInstance> | undefined>> {
  const out = new Map<string, Map<string, SeenInstance> | undefined>();
  await Promise.all(agents.map(async (agent) => {
    const api = cluster.localApi(agent);
    if (!api) return out.set(agent, undefined);
    try {
      const view = new Map<string, SeenInstance>();
      for (const service of SERVICES) {
        const res = await httpRequest(`${api}/v1/registry/services/${service}?all=true`, { timeoutMs: 3_000 });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        for (const i of (JSON.parse(res.text) as { instances: SeenInstance[] }).instances) view.set(`${service}/${i.id}`, { id: i.id, port: i.port, health: i.health, ...(i.version ? { version: i.version } : {}) });
      }
      out.set(agent, view);
    } catch {
      out.set(agent, undefined);
    }
  }));
  return out;
}
