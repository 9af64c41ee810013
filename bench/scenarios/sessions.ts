// sessions: N simulated agents hold their sessions for D seconds with the default heartbeats
// (hub pings every 10 s, 30 s read deadlines both ways). Target: hub RSS <= 1 GiB at 10 000
// agents, no spurious Disconnected. Options: --nodes N (10000) --duration S (300)
// --unit-size U (100) --results DIR --cpu-prof DIR
import type { EdgeNode } from '../../shared/api/index.js';
import { API, setupFleet, type FleetSetup } from '../harness/fleet-setup.js';
import { HubMonitor, rssOf, summarize } from '../harness/process-monitor.js';
import { finish, numberFlag, sleep, stringFlag } from '../harness/report.js';

export async function sessions(args: string[]): Promise<void> {
  const nodes = numberFlag(args, 'nodes', 10_000);
  const durationS = numberFlag(args, 'duration', 300);
  const unitSize = numberFlag(args, 'unit-size', 100);
  const cpuProfDir = stringFlag(args, 'cpu-prof');
  let monitor: HubMonitor | undefined;
  let baselineRss = 0;
  let setup: FleetSetup | undefined;
  try {
    setup = await setupFleet({
      nodes, unitSize, log: console.log, ...(cpuProfDir ? { cpuProfDir } : {}),
      onHubStarted: (hub) => {
        baselineRss = rssOf(hub.pid) ?? 0;
        monitor = new HubMonitor(hub);
        monitor.start();
      },
    });
    const { hub, fleet } = setup;
    const holdStarted = Date.now();
    const before = await fleet.stats();
    console.log(`holding ${nodes} sessions for ${durationS} s...`);
    let minConnected = before.connected;
    const holdUntil = holdStarted + durationS * 1000;
    while (Date.now() < holdUntil) {
      await sleep(Math.min(10_000, Math.max(0, holdUntil - Date.now())));
      const s = await fleet.stats();
      minConnected = Math.min(minConnected, s.connected);
      console.log(`  t+${Math.round((Date.now() - holdStarted) / 1000)} s: ${s.connected}/${nodes} connected, ${s.disconnects} disconnects, hub RSS ${Math.round((monitor?.latest()?.rssBytes ?? 0) / 1048576)} MiB`);
    }
    const after = await fleet.stats();
    const edgeNodes = (await hub.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items;
    const phases: Record<string, number> = {};
    for (const n of edgeNodes) phases[n.status?.phase ?? 'none'] = (phases[n.status?.phase ?? 'none'] ?? 0) + 1;
    const hold = summarize(monitor!.since(holdStarted));
    const all = monitor!.stop();
    if (cpuProfDir) await hub.stop();
    const perSessionKiB = hold.rssMaxBytes !== null ? Math.round((hold.rssMaxBytes - baselineRss) / nodes / 1024) : null;
    // The hold is what the target is about; disconnects while everyone was still dialling are reported apart.
    const holdDisconnects = after.disconnects - before.disconnects;
    // A session that ends while the fleet is still connecting is as spurious as one during the hold.
    const spurious = before.disconnects + holdDisconnects + (phases.Disconnected ?? 0) + (phases.Down ?? 0);
    finish({
      scenario: 'sessions',
      inputs: { nodes, durationSeconds: durationS, unitSize, pingInterval: '10s (hub default)', readDeadline: '30s (hub and agent default)', admissionRate: '500/s (hub default)' },
      figures: {
        ...setup.figures, hubBaselineRssMiB: Math.round(baselineRss / 1048576), hubDuringHold: hold, hubRssPerSessionKiB: perSessionKiB,
        minConnectedDuringHold: minConnected, disconnectsWhileConnecting: before.disconnects, disconnectsDuringHold: holdDisconnects, sessionsOpened: after.sessions, nodePhases: phases,
        disconnectReasons: after.disconnectReasons,
        fleetRssMiB: Math.round(after.rssBytes / 1048576),
      },
      hub: all,
      checks: {
        allConnectedThroughout: minConnected === nodes && after.connected === nodes,
        noAgentDisconnectedDuringHold: holdDisconnects === 0 && after.sessions === before.sessions,
        noAgentDisconnectedWhileConnecting: before.disconnects === 0,
        allNodesReady: phases.Ready === nodes,
      },
      targets: {
        hubRssMiB: { value: all.rssMaxMiB, target: '<= 1024 MiB at 10 000 agents', met: nodes >= 10_000 && all.rssMaxMiB !== null ? all.rssMaxMiB <= 1024 : null },
        spuriousDisconnected: { value: spurious, target: '0', met: spurious === 0 },
      },
      notes: [
        'Simulated agents: the agent\'s HubLink, DesiredCache and Outbox on in-memory SQLite, in separate fleet processes on the same 2-core machine (they compete with the hub for CPU).',
        'hubRssPerSessionKiB = (max hub RSS while holding - hub RSS right after start) / nodes.',
      ],
      headline: `sessions ${nodes} agents x ${durationS} s: hub RSS max ${all.rssMaxMiB} MiB (target <= 1024), ${perSessionKiB} KiB/session, ${spurious} spurious Disconnected (target 0)`,
    }, stringFlag(args, 'results'), []);
  } finally {
    monitor?.stop();
    await setup?.fleet.stop(5000).catch(() => undefined);
    await setup?.cleanup();
  }
}
