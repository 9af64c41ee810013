// fanout: one EdgeApp change that targets every node (all units), then one that targets one unit:
// time from the API write until each agent has committed the new generation to its cache (the
// commit happens before the agent acks). Target: p99 <= 5 s for all 10 000.
// Options: --nodes N (10000) --unit-size U (100) --runs R (3) --results DIR --cpu-prof DIR
// Kubernetes mode (`fanout-kube`, or `fanout --store kubernetes`; report fanout-kube.json): a real
// etcd + kube-apiserver (test/helpers/kube-apiserver.ts, opt-in: OUTPOST_TEST_KUBE_BIN_DIR), the
// CRDs of deploy/crds, --replicas R (1) `outpost hub --store kubernetes` processes with the agents
// spread over them (agent --hub lists), --nodes default 1000; adds the RSS and CPU of
// kube-apiserver, etcd and every replica per phase, and the API server's request counts.
import { join } from 'node:path';
import { kubeSkipReason, startKubeApiServer, type KubeTestServer } from '../../test/helpers/kube-apiserver.js';
import { setupFleet, API, type FleetSetup } from '../harness/fleet-setup.js';
import type { Fleet } from '../fleet/fleet.js';
import { HubProcess } from '../harness/hub-process.js';
import { HubMonitor, ProcessSampler } from '../harness/process-monitor.js';
import { distribution, finish, numberFlag, percentile, sleep, stringFlag } from '../harness/report.js';

interface AppView { metadata: { generation?: number } }

function app(name: string, units: { selector?: Record<string, string>; names?: string[] }, value: string) {
  return {
    apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name },
    spec: {
      // No replicas: the change itself is what fans out (instances are the scheduler's, measured by churn).
      units: units.selector ? { selector: { matchLabels: units.selector } } : { names: units.names },
      replicasPerUnit: 0,
      template: { processes: [{ name: 'main', command: 'sleep', args: ['3600'], env: { CHANGE: value } }] },
    },
  };
}

/** Writes the app, then waits until every expected agent committed that generation; latencies in ms. */
async function measure(hub: HubProcess, fleet: Fleet, body: ReturnType<typeof app>, expected: number, timeoutMs: number): Promise<{ latencies: number[]; missing: number }> {
  const name = body.metadata.name;
  const before = await hub.api<AppView>('GET', `${API}/edgeapps/${name}`).catch(() => undefined);
  const generation = (before?.metadata.generation ?? 0) + 1;
  await fleet.watch({ kind: 'EdgeApp', name, generation });
  const t0 = Date.now();
  const written = await hub.api<AppView>('PUT', `${API}/edgeapps/${name}`, body);
  if (written.metadata.generation !== generation) throw new Error(`expected generation ${generation}, the hub wrote ${written.metadata.generation}`);
  const deadline = t0 + timeoutMs;
  let result = await fleet.watchResult({ kind: 'EdgeApp', name, generation });
  while (result.times.length < expected && Date.now() < deadline) {
    await sleep(250);
    result = await fleet.watchResult({ kind: 'EdgeApp', name, generation });
  }
  return { latencies: result.times.map((t) => t - t0), missing: expected - result.times.length };
}

const KUBE_NAMESPACE = 'outpost-bench';

/** kube-apiserver's apiserver_request_total summed by "VERB resource[/subresource]" (Outpost's CRDs, Secrets, Leases). */
async function apiServerRequests(server: KubeTestServer): Promise<Record<string, number>> {
  const r = await server.request('GET', '/metrics');
  const counts: Record<string, number> = {};
  for (const m of String(r.body).matchAll(/^apiserver_request_total\{([^}]*)\} ([\d.e+]+)$/gm)) {
    const label = (k: string) => new RegExp(`(?:^|,)${k}="([^"]*)"`).exec(m[1]!)?.[1] ?? '';
    const resource = label('resource');
    if (label('group') !== 'outpost.dev' && resource !== 'secrets' && resource !== 'leases') continue;
    const key = `${label('verb')} ${resource}${label('subresource') ? `/${label('subresource')}` : ''}`;
    counts[key] = (counts[key] ?? 0) + Number(m[2]);
  }
  return counts;
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

export async function fanout(args: string[]): Promise<void> {
  const store = stringFlag(args, 'store') ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'kubernetes') throw new Error(`--store must be sqlite or kubernetes, got ${store}`);
  const kube = store === 'kubernetes';
  const scenario = kube ? 'fanout-kube' : 'fanout';
  const nodes = numberFlag(args, 'nodes', kube ? 1000 : 10_000);
  const unitSize = numberFlag(args, 'unit-size', 100);
  const runs = numberFlag(args, 'runs', 3);
  const replicas = Math.max(1, numberFlag(args, 'replicas', 1));
  const cpuProfDir = stringFlag(args, 'cpu-prof');
  if (kube) {
    const skip = kubeSkipReason();
    if (skip) {
      console.error(`${scenario} needs a real etcd + kube-apiserver: ${skip}`);
      process.exitCode = 2;
      return;
    }
  } else if (replicas > 1) {
    throw new Error('--replicas needs --store kubernetes (SQLite mode has one hub)');
  }
  let monitor: HubMonitor | undefined;
  let sampler: ProcessSampler | undefined;
  let setup: FleetSetup | undefined;
  let server: KubeTestServer | undefined;
  const requestCounts: { phase: string; counts: Promise<Record<string, number> | undefined> }[] = [];
  const phase = (name: string) => {
    sampler?.setPhase(name);
    if (server) requestCounts.push({ phase: name, counts: apiServerRequests(server).catch(() => undefined) });
  };
  try {
    let kubeStartSeconds: number | undefined;
    if (kube) {
      const t0 = performance.now();
      server = await startKubeApiServer({ installCrds: true });
      const ns = await server.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: KUBE_NAMESPACE } });
      if (ns.status !== 201) throw new Error(`creating namespace ${KUBE_NAMESPACE}: HTTP ${ns.status}`);
      kubeStartSeconds = Math.round((performance.now() - t0) / 100) / 10;
      console.log(`kube-apiserver ${server.url} (pid ${server.pids.apiserver}), etcd pid ${server.pids.etcd}, CRDs installed in ${kubeStartSeconds} s`);
    }
    const kubeServer = server;
    const startHubs = kubeServer ? async (dir: string) => {
      const hubs: HubProcess[] = [];
      // One after the other: the first creates the shared admin token Secret.
      for (let i = 0; i < replicas; i++) {
        hubs.push(await HubProcess.start({
          dataDir: join(dir, `hub-${i}`),
          args: ['--store', 'kubernetes', '--kubeconfig', kubeServer.kubeconfigPath, '--namespace', KUBE_NAMESPACE, '--replica-id', `hub-${i}`],
          ...(cpuProfDir ? { cpuProfDir } : {}),
        }));
      }
      sampler = new ProcessSampler({
        'kube-apiserver': kubeServer.pids.apiserver, etcd: kubeServer.pids.etcd,
        ...Object.fromEntries(hubs.map((h, i) => [`hub-${i}`, h.pid])),
      });
      sampler.start();
      return hubs;
    } : undefined;
    setup = await setupFleet({
      nodes, unitSize, log: console.log, onPhase: phase,
      ...(startHubs ? { startHubs } : {}), ...(cpuProfDir ? { cpuProfDir } : {}),
    });
    const { hub, hubs, fleet, units } = setup;
    const atStart = await fleet.stats(); // disconnects while everyone was dialling are not the measurement's
    phase('fanout');
    monitor = new HubMonitor(hub);
    monitor.start();
    const timeoutMs = 120_000;
    // Generation 1 of both apps reaches everyone first (first-time delivery is a different path).
    const firstAll = await measure(hub, fleet, app('fanout-all', { selector: { bench: 'yes' } }, 'first'), nodes, timeoutMs);
    const firstOne = await measure(hub, fleet, app('fanout-one', { names: [units[0]!] }, 'first'), Math.min(unitSize, nodes), timeoutMs);
    const all: { p50: number; p99: number; max: number; missing: number }[] = [];
    const one: typeof all = [];
    const runFigures = (r: { latencies: number[]; missing: number }) => ({ p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), max: percentile(r.latencies, 100), missing: r.missing });
    for (let i = 0; i < runs; i++) {
      await sleep(2000); // let acks and status writes of the previous change settle
      const a = await measure(hub, fleet, app('fanout-all', { selector: { bench: 'yes' } }, `run-${i}`), nodes, timeoutMs);
      all.push(runFigures(a));
      console.log(`  run ${i + 1}: all ${nodes}: p50 ${all[i]!.p50} ms, p99 ${all[i]!.p99} ms, max ${all[i]!.max} ms, missing ${a.missing}`);
      await sleep(1000);
      const o = await measure(hub, fleet, app('fanout-one', { names: [units[0]!] }, `run-${i}`), Math.min(unitSize, nodes), timeoutMs);
      one.push(runFigures(o));
      console.log(`  run ${i + 1}: one unit (${Math.min(unitSize, nodes)}): p50 ${one[i]!.p50} ms, p99 ${one[i]!.p99} ms, max ${one[i]!.max} ms, missing ${o.missing}`);
    }
    const median = (xs: number[]) => percentile(xs, 50);
    const allP99 = median(all.map((r) => r.p99));
    const stats = await fleet.stats();
    const hubFigures = monitor.stop();
    phase('end');
    const processes = sampler?.stop();
    const sessionsPerReplica = kube ? await Promise.all(hubs.map(async (h) => ((await (await fetch(`${h.url}/healthz`)).json()) as { sessions?: number }).sessions ?? null)) : undefined;
    const counted = await Promise.all(requestCounts.map(async (c) => ({ phase: c.phase, counts: await c.counts })));
    const apiServerRequestsPerPhase: Record<string, Record<string, number>> = {};
    for (let i = 0; i + 1 < counted.length; i++) {
      const [a, b] = [counted[i]!, counted[i + 1]!];
      if (a.counts && b.counts) apiServerRequestsPerPhase[a.phase] = delta(b.counts, a.counts);
    }
    if (cpuProfDir) await Promise.all(hubs.map((h) => h.stop()));
    const kubeFigures = kube ? {
      replicas, kubeApiServerStartSeconds: kubeStartSeconds, sessionsPerReplica,
      // RSS max / CPU (cores, mean) per process, over the run and per phase: units (NodeUnits and
      // tokens), join (EdgeNode CRs, credential Secrets), connect (Ready status writes), fanout.
      processes, apiServerRequestsPerPhase,
    } : {};
    finish({
      scenario,
      inputs: {
        nodes, unitSize, units: units.length, runs, change: 'EdgeApp spec.template env value (replicasPerUnit 0), written with PUT', measuredTo: 'agent committed the new generation to its SQLite cache (before its ack)',
        ...(kube ? { store: 'kubernetes', replicas, kubeApiServer: 'etcd + kube-apiserver on this machine (test/helpers/kube-apiserver.ts), watch cache on' } : {}),
      },
      figures: {
        ...setup.figures,
        ...kubeFigures,
        firstDeliveryAllMs: distribution(firstAll.latencies), firstDeliveryOneUnitMs: distribution(firstOne.latencies),
        allNodesRuns: all, oneUnitRuns: one,
        allNodesMedianOfRuns: { p50: median(all.map((r) => r.p50)), p99: allP99, max: median(all.map((r) => r.max)) },
        oneUnitMedianOfRuns: { p50: median(one.map((r) => r.p50)), p99: median(one.map((r) => r.p99)), max: median(one.map((r) => r.max)) },
        disconnectsWhileConnecting: atStart.disconnects, disconnectsDuringMeasurement: stats.disconnects - atStart.disconnects,
      },
      hub: hubFigures,
      checks: {
        everyAgentCommittedEveryChange: [...all, ...one].every((r) => r.missing === 0) && firstAll.missing === 0 && firstOne.missing === 0,
        noAgentDisconnectedDuringMeasurement: stats.disconnects === atStart.disconnects,
      },
      targets: {
        allNodesP99Ms: { value: allP99, target: '<= 5000 ms at 10 000 nodes (median of runs)', met: nodes >= 10_000 ? allP99 <= 5000 : null },
      },
      notes: ['Latency = agent commit time (epoch ms in the fleet process) - time just before the PUT (same machine clock).'],
      headline: `${scenario} ${nodes} nodes${kube ? ` (${replicas} replica${replicas > 1 ? 's' : ''})` : ''}: p50 ${median(all.map((r) => r.p50))} ms, p99 ${allP99} ms, max ${median(all.map((r) => r.max))} ms (target p99 <= 5000); one unit of ${Math.min(unitSize, nodes)}: p99 ${median(one.map((r) => r.p99))} ms`,
    }, stringFlag(args, 'results'), []);
  } finally {
    monitor?.stop();
    sampler?.stop();
    await setup?.fleet.stop(5000).catch(() => undefined);
    await setup?.cleanup();
    await server?.stop();
  }
}
