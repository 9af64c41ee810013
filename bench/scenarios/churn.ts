// churn: with N agents connected, new nodes join at --join-rate per second (new units, each new
// agent connecting right after its join) while an EdgeApp placed in every unit is updated every
// --update-interval seconds (rolling updates; simulated agents report their instances Running),
// and an operator reads the API in a loop. Measured: API list/get latency p50/p99, achieved join
// rate, hub RSS and event-loop delay. Options: --nodes N (10000) --duration S (60)
// --join-rate R (100) --update-interval S (5) --unit-size U (100) --results DIR --cpu-prof DIR
import { API, createUnits, setupFleet, type FleetSetup } from '../harness/fleet-setup.js';
import type { HubProcess } from '../harness/hub-process.js';
import { Fleet } from '../fleet/fleet.js';
import type { FleetNode } from '../fleet/protocol.js';
import { HubMonitor } from '../harness/process-monitor.js';
import { distribution, finish, numberFlag, sleep, stringFlag, until } from '../harness/report.js';

/** Times each API call in a loop until `stop` resolves; one call at a time, like an operator's dashboard. */
async function probeApi(hub: HubProcess, paths: Record<string, string>, stopAt: number): Promise<Record<string, { ms: number[]; errors: number; errorMessages: string[] }>> {
  const out: Record<string, { ms: number[]; errors: number; errorMessages: string[] }> = Object.fromEntries(Object.keys(paths).map((k) => [k, { ms: [], errors: 0, errorMessages: [] }]));
  while (Date.now() < stopAt) {
    for (const [name, path] of Object.entries(paths)) {
      const t0 = performance.now();
      try {
        await hub.api('GET', path, undefined, 30_000);
        out[name]!.ms.push(performance.now() - t0);
      } catch (err) {
        out[name]!.errors++;
        if (out[name]!.errorMessages.length < 3) out[name]!.errorMessages.push(`${(err as Error).message.slice(0, 160)} after ${Math.round(performance.now() - t0)} ms`);
      }
    }
    await sleep(100);
  }
  return out;
}

function churnApp(version: number) {
  return {
    apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'churn' },
    spec: {
      units: { selector: { matchLabels: { bench: 'yes' } } }, replicasPerUnit: 1,
      template: { processes: [{ name: 'main', command: 'sleep', args: ['3600'], env: { VERSION: String(version) } }] },
    },
  };
}

export async function churn(args: string[]): Promise<void> {
  const nodes = numberFlag(args, 'nodes', 10_000);
  const durationS = numberFlag(args, 'duration', 60);
  const joinRate = numberFlag(args, 'join-rate', 100);
  const updateIntervalS = numberFlag(args, 'update-interval', 5);
  const unitSize = numberFlag(args, 'unit-size', 100);
  const cpuProfDir = stringFlag(args, 'cpu-prof');
  let setup: FleetSetup | undefined;
  let joiners: Fleet | undefined;
  let monitor: HubMonitor | undefined;
  try {
    setup = await setupFleet({ nodes, unitSize, log: console.log, ...(cpuProfDir ? { cpuProfDir } : {}) });
    const { hub, fleet } = setup;
    const atStart = await fleet.stats(); // disconnects while everyone was dialling are reported apart
    await hub.api('PUT', `${API}/edgeapps/churn`, churnApp(0));
    await sleep(3000);
    // New nodes: their own units (created before the clock starts), joined by their own fleet process.
    const newCount = Math.round(joinRate * durationS);
    const newUnits = await createUnits(hub, Math.ceil(newCount / unitSize), unitSize, setup.units.length);
    const newNodes: FleetNode[] = Array.from({ length: newCount }, (_, i) => {
      const unit = newUnits.units[Math.floor(i / unitSize)]!;
      return { name: `${unit}-n${String(i % unitSize).padStart(3, '0')}`, token: newUnits.tokens.get(unit)! };
    });
    joiners = await Fleet.spawn(newCount);
    monitor = new HubMonitor(hub);
    monitor.start();
    console.log(`churn for ${durationS} s: ${joinRate} joins/s (${newCount} new nodes), app update every ${updateIntervalS} s, API probes`);
    const started = Date.now();
    const stopAt = started + durationS * 1000;
    const sample = setup.nodes[Math.floor(setup.nodes.length / 2)]!.name;
    const probes = probeApi(hub, {
      listEdgeNodes: `${API}/edgenodes`, listEdgeApps: `${API}/edgeapps`, listInstances: `${API}/instances`,
      getEdgeNode: `${API}/edgenodes/${sample}`, getEdgeApp: `${API}/edgeapps/churn`,
    }, stopAt);
    const joins = joiners.joinAndStart(hub.url, newNodes, joinRate, durationS * 1000 + 300_000);
    let updates = 0;
    const updateErrors: string[] = [];
    while (Date.now() < stopAt) {
      await sleep(Math.min(updateIntervalS * 1000, Math.max(0, stopAt - Date.now())));
      if (Date.now() >= stopAt) break;
      try {
        await hub.api('PUT', `${API}/edgeapps/churn`, churnApp(++updates));
      } catch (err) {
        updateErrors.push((err as Error).message.slice(0, 200));
      }
    }
    const api = await probes;
    const joined = await joins;
    const joinSeconds = (Date.now() - started) / 1000;
    // The last joiners dial right after their join; give them a bounded moment to connect.
    const j = joiners;
    await until(async () => ((await j.stats()).connected >= newCount - joined.failures.length ? true : undefined), 120_000, 'new agents connected', 500).catch(() => undefined);
    const [oldStats, newStats] = [await fleet.stats(), await joiners.stats()];
    const hubFigures = monitor.stop();
    if (cpuProfDir) await hub.stop();
    const latency = Object.fromEntries(Object.entries(api).map(([k, v]) => [k, { ...distribution(v.ms), errors: v.errors, ...(v.errorMessages.length ? { errorMessages: v.errorMessages } : {}) }]));
    const listP99 = latency.listEdgeNodes?.p99 ?? null;
    const getP99 = latency.getEdgeNode?.p99 ?? null;
    finish({
      scenario: 'churn',
      inputs: { nodes, durationSeconds: durationS, joinRate, newNodes: newCount, updateIntervalSeconds: updateIntervalS, unitSize, app: 'replicasPerUnit 1 in every unit, template env changed at each update' },
      figures: {
        ...setup.figures, apiLatencyMs: latency, appUpdates: updates, updateErrors: updateErrors.length,
        joinsAchievedPerSecond: Math.round((newCount - joined.failures.length) / joinSeconds), joinFailures: joined.failures.length, churnJoinMs: distribution(joined.joinMs),
        newAgentsConnected: newStats.connected, disconnectsWhileConnecting: atStart.disconnects, oldAgentDisconnectsDuringChurn: oldStats.disconnects - atStart.disconnects,
      },
      hub: hubFigures,
      checks: {
        everyJoinSucceeded: joined.failures.length === 0,
        everyNewAgentConnected: newStats.connected === newCount,
        noApiErrors: Object.values(api).every((v) => v.errors === 0),
        appUpdatesAccepted: updateErrors.length === 0,
        noAgentDisconnected: oldStats.disconnects === atStart.disconnects && newStats.disconnects === 0,
      },
      targets: {
        apiListEdgeNodesP99Ms: { value: listP99, target: 'reported (no target in the issue)', met: null },
        apiGetEdgeNodeP99Ms: { value: getP99, target: 'reported (no target in the issue)', met: null },
        joinsPerSecond: { value: Math.round((newCount - joined.failures.length) / joinSeconds), target: `${joinRate}/s offered`, met: null },
      },
      notes: ['Lists go to the store (SQLite, every row parsed); gets read one row.', 'API probe: one request at a time, 100 ms apart.'],
      headline: `churn ${nodes}+${newCount} nodes, ${joinRate} joins/s offered, update every ${updateIntervalS} s: API list edgenodes p99 ${listP99} ms, get edgenode p99 ${getP99} ms`,
    }, stringFlag(args, 'results'), []);
  } finally {
    monitor?.stop();
    await joiners?.stop(5000).catch(() => undefined);
    joiners?.kill();
    await setup?.fleet.stop(5000).catch(() => undefined);
    await setup?.cleanup();
  }
}
