// Local service registry (issue 6): real agents (`outpost agent` processes) in one unit with
// --services services and --instances instances registered over the agents' HTTP API, then:
// register-to-visible on the same node and on another node of the unit (blocking queries opened
// before the PUT; p99 targets 50 ms / 500 ms), a dead TTL instance noticed (last heartbeat to gone
// from healthy lookups, <= 4 s), a dead peer noticed (SIGKILL to gone from healthy lookups on the
// others, <= 7 s), zero false removals (no preloaded instance ever missing or unhealthy on a live
// node before the kill), and how long the hub's global view takes to hold every instance.
// Options: --agents N (3) --services S (1000) --instances I (10000) --samples K (200)
//          --ttl-probes P (5) --concurrency C (8 registrations in flight per agent) --results DIR
import { TestCluster } from '../../test/helpers/cluster.js';
import { distribution, finish, numberFlag, sleep, stringFlag, until } from '../harness/report.js';

const API = '/apis/outpost.dev/v1alpha1';
const REG = '/v1/registry/services';
/** No DNS server (the test cluster already gives each agent a free peer port). */
const AGENT_ARGS = ['--dns-listen', 'none'];

interface Answer { index: number; instances: { id: string; node: string; health: string }[] }
interface Listing { services: { name: string; instances: number; passing: number }[] }

let retriedRequests = 0;

/** One HTTP call; a request that fails on the socket (a keep-alive connection closed under it) is sent again, at most 3 times: every call here is idempotent. */
async function call<T>(method: string, url: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  let res: Response;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await fetch(url, { method, headers: { 'Content-Type': 'application/json' }, signal: AbortSignal.timeout(timeoutMs), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      break;
    } catch (err) {
      if (attempt >= 3 || (err as Error).name === 'TimeoutError') throw new Error(`${method} ${url}: ${(err as Error).message} (${String((err as Error).cause ?? '')})`, { cause: err });
      retriedRequests++;
    }
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Resolves with the time the instance `id` is visible (healthy) at `api`, using blocking queries from `index`. */
async function visibleAt(api: string, service: string, id: string, index: number, deadlineMs: number): Promise<number> {
  let from = index;
  while (performance.now() < deadlineMs) {
    const a = await call<Answer>('GET', `${api}${REG}/${service}?index=${from}&wait=10s`);
    if (a.instances.some((i) => i.id === id)) return performance.now();
    from = a.index;
  }
  throw new Error(`${service}/${id} not visible at ${api} in time`);
}

/** Polls healthy lookups at `api` every 25 ms until `gone` holds; returns that time. */
async function goneAt(api: string, service: string, gone: (a: Answer) => boolean, deadlineMs: number): Promise<number> {
  while (performance.now() < deadlineMs) {
    if (gone(await call<Answer>('GET', `${api}${REG}/${service}`))) return performance.now();
    await sleep(25);
  }
  throw new Error(`${service} still shows the instance at ${api}`);
}

/** Upper bound (ms) of the first bucket holding 99 % of a histogram's observations, summed over its series; null when empty. */
async function histogramP99Ms(api: string, name: string): Promise<number | null> {
  const text = await (await fetch(`${api}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\d+)`, 'gm'))) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  const total = buckets.get(Infinity) ?? 0;
  if (total === 0) return null;
  const le = [...buckets.entries()].sort((x, y) => x[0] - y[0]).find(([, n]) => n >= 0.99 * total)?.[0] ?? Infinity;
  return le === Infinity ? null : le * 1000;
}

async function pool(n: number, count: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, count) }, async () => {
    while (next < count) await task(next++);
  }));
}

export async function registry(args: string[]): Promise<void> {
  const agents = Math.max(2, numberFlag(args, 'agents', 3));
  const services = numberFlag(args, 'services', 1000);
  const instances = numberFlag(args, 'instances', 10_000);
  const samples = numberFlag(args, 'samples', 200);
  const ttlProbes = numberFlag(args, 'ttl-probes', 5);
  const concurrency = numberFlag(args, 'concurrency', 8);
  const resultsDir = stringFlag(args, 'results');
  const cluster = new TestCluster();
  const procs: Awaited<ReturnType<TestCluster['startAgent']>>[] = [];
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  try {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'bench' }, spec: {} });
    for (let i = 0; i < agents; i++) procs.push(await cluster.startAgent(`reg-${i}`, 'bench', AGENT_ARGS));
    const apis = procs.map((p) => p.localApi);
    const nodes = procs.map((_, i) => `reg-${i}`);
    log(`hub ${cluster.requireHub().url}; ${agents} agents; preloading ${instances} instances of ${services} services`);

    // ---- preload: instance j of service svc-(j mod S), registered on agent (j mod N)
    const preloadStart = performance.now();
    await Promise.all(apis.map((api, a) => {
      const mine = Array.from({ length: Math.ceil((instances - a) / agents) }, (_, k) => a + k * agents).filter((j) => j < instances);
      return pool(concurrency, mine.length, async (k) => {
        const j = mine[k]!;
        await call('PUT', `${api}${REG}/svc-${j % services}/instances/i-${j}`, { address: '10.1.0.1', port: 10_000 + (j % 50_000), ttl: '1h' });
      });
    }));
    const preloadSeconds = (performance.now() - preloadStart) / 1000;
    log(`preloaded in ${preloadSeconds.toFixed(1)} s (${Math.round(instances / preloadSeconds)} registrations/s over ${agents} agents)`);
    const counts = async (api: string) => {
      const l = await call<Listing>('GET', `${api}${REG}`);
      const pre = l.services.filter((s) => s.name.startsWith('svc-'));
      return { instances: pre.reduce((n, s) => n + s.instances, 0), passing: pre.reduce((n, s) => n + s.passing, 0) };
    };
    await until(async () => ((await Promise.all(apis.map(counts))).every((c) => c.instances === instances) ? true : undefined), 300_000, 'every agent holding every instance', 250);
    const replicatedSeconds = (performance.now() - preloadStart) / 1000;
    log(`every agent holds all ${instances} instances ${replicatedSeconds.toFixed(1)} s after the preload started`);

    // ---- false removals: every live agent's full listing, checked between register-to-visible
    // samples (a listing of 10 000 instances costs the agent CPU: never during a measurement),
    // then every 500 ms through the TTL phase until the kill.
    let minInstances = instances;
    let minPassing = instances;
    let checksDone = 0;
    const check = async () => {
      for (const c of await Promise.all(apis.map(counts))) {
        minInstances = Math.min(minInstances, c.instances);
        minPassing = Math.min(minPassing, c.passing);
      }
      checksDone++;
    };

    // ---- register to visible
    const sameNode: number[] = [];
    const otherNode: number[] = [];
    for (let k = 0; k < samples; k++) {
      const a = k % agents;
      const b = (a + 1) % agents;
      const service = `probe-${k % 20}`;
      const id = `p-${k}`;
      const [ia, ib] = await Promise.all([call<Answer>('GET', `${apis[a]}${REG}/${service}`), call<Answer>('GET', `${apis[b]}${REG}/${service}`)]);
      const deadline = performance.now() + 30_000;
      const seenA = visibleAt(apis[a]!, service, id, ia.index, deadline);
      const seenB = visibleAt(apis[b]!, service, id, ib.index, deadline);
      const t0 = performance.now();
      await call('PUT', `${apis[a]}${REG}/${service}/instances/${id}`, { address: '10.2.0.1', port: 80, ttl: '1h' });
      const [ta, tb] = await Promise.all([seenA, seenB]);
      sameNode.push(ta - t0);
      otherNode.push(tb - t0);
      await call('DELETE', `${apis[a]}${REG}/${service}/instances/${id}`);
      if (k % 10 === 9) await check();
    }
    log(`register to visible: same node p99 ${distribution(sameNode).p99} ms, other node p99 ${distribution(otherNode).p99} ms (${samples} samples)`);

    // ---- dead TTL instance: ttl 2 s, three heartbeats, then silence
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        await check();
        await sleep(500);
      }
    })();
    const ttlNoticed: { sameNodeMs: number; otherNodeMs: number }[] = [];
    await Promise.all(Array.from({ length: ttlProbes }, async (_, k) => {
      const api = apis[k % agents]!;
      const other = apis[(k + 1) % agents]!;
      const id = `t-${k}`;
      await call('PUT', `${api}${REG}/ttlprobe/instances/${id}`, { address: '10.3.0.1', port: 80, ttl: '2s' });
      await until(async () => ((await call<Answer>('GET', `${other}${REG}/ttlprobe`)).instances.some((i) => i.id === id) ? true : undefined), 10_000, 'ttl probe replicated', 25);
      let last = performance.now();
      for (let h = 0; h < 3; h++) {
        await sleep(500);
        await call('PUT', `${api}${REG}/ttlprobe/instances/${id}/heartbeat`);
        last = performance.now();
      }
      const deadline = performance.now() + 30_000;
      const gone = (a: Answer) => !a.instances.some((i) => i.id === id);
      const [ta, tb] = await Promise.all([goneAt(api, 'ttlprobe', gone, deadline), goneAt(other, 'ttlprobe', gone, deadline)]);
      ttlNoticed.push({ sameNodeMs: Math.round(ta - last), otherNodeMs: Math.round(tb - last) });
    }));
    const ttlMax = Math.max(...ttlNoticed.flatMap((t) => [t.sameNodeMs, t.otherNodeMs]));
    log(`dead TTL instance (ttl 2 s) gone from healthy lookups: max ${ttlMax} ms after its last heartbeat`);

    watching = false;
    await watcher;

    // The agents' own histogram: request arrival to committed and visible (no client, no HTTP).
    const inAgentP99Ms = await Promise.all(apis.map((api) => histogramP99Ms(api, 'outpost_agent_registry_register_to_visible_seconds')));

    // ---- dead peer: SIGKILL the last agent
    const victim = agents - 1;
    const killedAt = performance.now();
    await procs[victim]!.kill();
    const deadline = killedAt + 60_000;
    const peerNoticedMs: number[] = [];
    await Promise.all(apis.slice(0, victim).map(async (api) => {
      const t = await goneAt(api, 'svc-0', (a) => !a.instances.some((i) => i.node === nodes[victim]), deadline);
      peerNoticedMs.push(Math.round(t - killedAt));
    }));
    const afterKill = await Promise.all(apis.slice(0, victim).map(counts));
    const peerMax = Math.max(...peerNoticedMs);
    log(`dead peer noticed by every other agent within ${peerMax} ms of SIGKILL`);

    // ---- the hub's global view
    const hubView = await until(async () => {
      const l = await cluster.api<{ items: { service: string; total: number }[] }>('GET', `${API}/services`);
      const total = l.items.filter((s) => s.service.startsWith('svc-')).reduce((n, s) => n + s.total, 0);
      return total === instances ? total : undefined;
    }, 120_000, 'the hub view holding every instance', 500).catch(() => undefined);
    const hubSeconds = (performance.now() - preloadStart) / 1000;

    const falseRemovals = instances - minInstances;
    const falseUnhealthy = instances - minPassing;
    const same = distribution(sameNode);
    const other = distribution(otherNode);
    finish({
      scenario: 'registry',
      inputs: { agents, services, instances, samples, ttlProbes, concurrency, ttl: '2s (probes), 1h (preload)' },
      figures: {
        preloadSeconds: Math.round(preloadSeconds * 10) / 10,
        replicatedToAllSeconds: Math.round(replicatedSeconds * 10) / 10,
        registerToVisibleSameNodeMs: same,
        registerToVisibleOtherNodeMs: other,
        inAgentRegisterToVisibleP99UpperBoundMs: inAgentP99Ms,
        deadTtlNoticedMs: ttlNoticed,
        deadPeerNoticedMs: peerNoticedMs,
        afterKill: afterKill.map((c) => ({ instances: c.instances, passing: c.passing })),
        falseRemovals,
        falseUnhealthy,
        falseRemovalChecks: checksDone,
        retriedRequests,
        hubViewCompleteSecondsAfterPreloadStart: hubView === undefined ? null : Math.round(hubSeconds * 10) / 10,
      },
      checks: {
        everyRegistrationVisible: sameNode.length === samples && otherNode.length === samples,
        noFalseRemovals: falseRemovals === 0,
        noFalseUnhealthy: falseUnhealthy === 0,
        victimInstancesKeptAsUnhealthy: afterKill.every((c) => c.instances === instances),
        hubViewComplete: hubView !== undefined,
      },
      targets: {
        registerToVisibleSameNodeP99Ms: { value: same.p99, target: '<= 50 ms', met: same.p99 === null ? null : same.p99 <= 50 },
        registerToVisibleOtherNodeP99Ms: { value: other.p99, target: '<= 500 ms', met: other.p99 === null ? null : other.p99 <= 500 },
        deadTtlNoticedMaxMs: { value: ttlMax, target: '<= 4000 ms', met: ttlMax <= 4000 },
        deadPeerNoticedMaxMs: { value: peerMax, target: '<= 7000 ms', met: peerMax <= 7000 },
      },
      notes: [
        'register to visible: from sending the PUT to a blocking query (opened before it) answering with the instance, as a client sees it; HTTP on loopback included',
        'inAgentRegisterToVisibleP99UpperBoundMs: per agent, the histogram bucket bound holding 99 % of outpost_agent_registry_register_to_visible_seconds (request arrival to committed and visible inside the agent, preload included)',
        'dead TTL: from the last heartbeat to the instance missing from healthy lookups on its node and on another node',
        'dead peer: from SIGKILL of one agent to its instances missing from healthy lookups on every other agent',
        'false removals: preloaded instances missing (all=true) or unhealthy on any live agent: full listings of every agent after every 10th register-to-visible sample and every 500 ms through the TTL phase, until the kill',
        'the target figures are meant for a quiet 2-core machine: loadAverageAtStart shows how busy this one was',
      ],
      headline: `registry: register-to-visible p99 ${same.p99} ms same node / ${other.p99} ms other node; dead TTL <= ${ttlMax} ms; dead peer <= ${peerMax} ms; false removals ${falseRemovals}`,
    }, resultsDir, []);
  } catch (err) {
    // What the agents said last: the reason a request failed is usually there.
    for (const [i, p] of procs.entries()) console.error(`--- agent reg-${i} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'}):\n${p.output().slice(-3000)}`);
    throw err;
  } finally {
    await cluster.cleanup();
  }
}
