// A reconnect storm: many agents (the real link, cache and outbox code, in this process with
// in-memory SQLite) reconnect at once after the hub is SIGKILLed and restarted. The hub admits
// them through its queue; none may end up Disconnected.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { DesiredCache } from '../../edge-agent/cache/desired-cache.js';
import { Outbox } from '../../edge-agent/cache/outbox.js';
import { HubLink } from '../../edge-agent/link/hub-link.js';
import type { EdgeNode } from '../../shared/api/index.js';
import { silentLogger } from '../../shared/logger.js';
import { TestCluster } from '../helpers/cluster.js';
import { edgeApp, nodeUnit } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const AGENTS = 120;

describe('reconnect storm', () => {
  const cluster = new TestCluster();
  const links: { name: string; link: HubLink; cache: DesiredCache }[] = [];
  const ADMISSION = ['--admission-rate', '40']; // slow on purpose: the storm must queue

  before(async () => {
    await cluster.startHub(0, ADMISSION);
    await cluster.api('POST', `${API}/nodeunits`, nodeUnit('storm'));
    const { token } = await cluster.api<{ token: string }>('POST', `${API}/jointokens`, { unit: 'storm', uses: null });
    const hubUrl = cluster.requireHub().url;
    for (let i = 0; i < AGENTS; i++) {
      const name = `s-${String(i).padStart(3, '0')}`;
      const res = await fetch(`${hubUrl}/agent/v1/join`, { method: 'POST', body: JSON.stringify({ token, node: name }) });
      const { credential } = (await res.json()) as { credential: string };
      const db = new Database(':memory:');
      const cache = new DesiredCache(db);
      const link = new HubLink(
        { cache, outbox: new Outbox(db), log: silentLogger(), onDesiredChanged: () => undefined },
        { hubUrl, credential, readDeadlineMs: 5000, backoff: { initialMs: 200, maxMs: 2000 } },
      );
      link.start();
      links.push({ name, link, cache });
    }
  });

  after(async () => {
    await Promise.all(links.map((l) => l.link.stop()));
    await cluster.cleanup();
  });

  test(`${AGENTS} agents reconnect after a hub SIGKILL; all resync and none is left Disconnected`, async () => {
    const readyCount = async () => (await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items.filter((n) => n.status?.phase === 'Ready').length;
    await waitFor(async () => (await readyCount()) === AGENTS, { timeoutMs: 30_000, message: 'all Ready before the storm' });
    await cluster.api('POST', `${API}/edgeapps`, edgeApp('everywhere', { units: ['storm'], replicasPerUnit: AGENTS }));
    await waitFor(() => links.every((l) => l.cache.instances().length === 1), { timeoutMs: 30_000, message: 'one instance cached per agent' });

    const port = cluster.hubPort();
    await cluster.requireHub().kill();
    await waitFor(() => links.every((l) => !l.link.state.connected), { timeoutMs: 15_000, message: 'all links down' });
    // A change made while the hub is down cannot happen; one made right after restart must reach everyone.
    const started = Date.now();
    await cluster.startHub(port, ADMISSION);
    await cluster.api('PUT', `${API}/edgeapps/everywhere`, edgeApp('everywhere', { units: ['storm'], replicasPerUnit: AGENTS, template: { command: 'sleep', args: ['7'] } }));
    await waitFor(() => links.every((l) => l.link.state.connected && l.cache.instances()[0]?.spec.template.processes?.[0]?.args?.[0] === '7'), {
      timeoutMs: 60_000, intervalMs: 100, message: 'every agent reconnected and has the change',
    });
    const lastMs = Date.now() - started;
    console.log(`# reconnect storm: ${AGENTS} agents resynced ${lastMs} ms after the hub restart (admission 40/s)`);
    await waitFor(async () => (await readyCount()) === AGENTS, { timeoutMs: 20_000, message: 'all Ready after the storm' });
    // Past the hub's read deadline (3 s) and write coalescing: still every node Ready, none Disconnected.
    await new Promise((r) => setTimeout(r, 4000));
    const nodes = (await cluster.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items;
    assert.deepEqual(nodes.filter((n) => n.status?.phase !== 'Ready').map((n) => `${n.metadata.name}:${n.status?.phase}`), []);
  });
});
