// reconnect-storm: the hub is SIGKILLed with N agents attached and restarted on the same port
// and data; every agent reconnects at once (its own backoff with jitter; the hub's admission
// queue paces hellos). Measured: time from the restart until every agent has committed its
// resync. Target at 10 000: <= 60 s, zero nodes marked Down, no agent gives up.
// Options: --nodes N (10000) --unit-size U (100) --runs R (1) --observe S (35: seconds after the
// restart during which node phases are watched; past the hub's 30 s startup grace) --results DIR --cpu-prof DIR
import type { EdgeNode } from '../../shared/api/index.js';
import { API, setupFleet, type FleetSetup } from '../harness/fleet-setup.js';
import { HubProcess } from '../harness/hub-process.js';
import { HubMonitor } from '../harness/process-monitor.js';
import { distribution, finish, numberFlag, percentile, sleep, stringFlag } from '../harness/report.js';

export async function reconnectStorm(args: string[]): Promise<void> {
  const nodes = numberFlag(args, 'nodes', 10_000);
  const unitSize = numberFlag(args, 'unit-size', 100);
  const runs = Math.max(1, numberFlag(args, 'runs', 1));
  const cpuProfDir = stringFlag(args, 'cpu-prof');
  const observeS = numberFlag(args, 'observe', 35);
  let setup: FleetSetup | undefined;
  let monitor: HubMonitor | undefined;
  let hub: HubProcess | undefined;
  try {
    setup = await setupFleet({ nodes, unitSize, log: console.log });
    hub = setup.hub;
    const { fleet } = setup;
    const dataDir = `${setup.dir}/hub`;
    monitor = new HubMonitor(hub);
    monitor.start();
    const results: { resyncAllSeconds: number; resyncFromKillSeconds: number; resyncMs: ReturnType<typeof distribution>; connectMs: ReturnType<typeof distribution>; hubStartSeconds: number; maxDown: number; maxDisconnected: number; notResynced: number }[] = [];
    for (let run = 0; run < runs; run++) {
      await sleep(3000); // node status flushed, agents idle
      const port = hub.port;
      await fleet.mark();
      const killedAt = Date.now();
      await hub.kill();
      console.log(`run ${run + 1}: hub SIGKILLed with ${nodes} agents attached; restarting on port ${port}`);
      const restartAt = Date.now();
      hub = await HubProcess.start({ dataDir, port, ...(cpuProfDir && run === runs - 1 ? { cpuProfDir } : {}) });
      const hubStartSeconds = (Date.now() - restartAt) / 1000;
      monitor.setHub(hub);
      const deadline = Date.now() + 300_000;
      let stats = await fleet.stats();
      while (stats.resynced < nodes && Date.now() < deadline) {
        await sleep(1000);
        stats = await fleet.stats();
        const l = monitor.latest();
        console.log(`  t+${Math.round((Date.now() - restartAt) / 1000)} s: ${stats.connected} connected, ${stats.resynced}/${nodes} resynced; hub admission ${l?.sessions ?? '?'} sessions, phases ${JSON.stringify(l?.nodePhases ?? {})}`);
      }
      // Stay a little past the startup grace (30 s) so that a node wrongly left Ready-without-session
      // or marked Down would show.
      await sleep(Math.max(0, restartAt + observeS * 1000 - Date.now()));
      const samples = monitor.since(restartAt);
      const maxPhase = (p: string) => Math.max(0, ...samples.map((s) => s.nodePhases?.[p] ?? 0));
      const edgeNodes = (await hub.api<{ items: EdgeNode[] }>('GET', `${API}/edgenodes`)).items;
      const down = edgeNodes.filter((n) => n.status?.phase === 'Down').length;
      const resyncDurations = stats.resyncTimes.map((t) => t - restartAt);
      results.push({
        resyncAllSeconds: round1((Math.max(...stats.resyncTimes) - restartAt) / 1000),
        resyncFromKillSeconds: round1((Math.max(...stats.resyncTimes) - killedAt) / 1000),
        resyncMs: distribution(resyncDurations), connectMs: distribution(stats.connectTimes.map((t) => t - restartAt)),
        hubStartSeconds: round1(hubStartSeconds), maxDown: Math.max(maxPhase('Down'), down), maxDisconnected: maxPhase('Disconnected'), notResynced: nodes - stats.resynced,
      });
      console.log(`run ${run + 1}: all resynced ${results[run]!.resyncAllSeconds} s after the restart (hub start ${hubStartSeconds.toFixed(1)} s), Down max ${results[run]!.maxDown}`);
    }
    const final = await fleet.stats();
    const hubFigures = monitor.stop();
    if (cpuProfDir) await hub.stop();
    const worst = Math.max(...results.map((r) => r.resyncAllSeconds));
    const median = percentile(results.map((r) => r.resyncAllSeconds), 50);
    const maxDown = Math.max(...results.map((r) => r.maxDown));
    finish({
      scenario: 'reconnect-storm',
      inputs: { nodes, unitSize, runs, observeSeconds: observeS, admissionRate: '500/s (hub default)', agentBackoff: '500 ms doubling to 30 s, full jitter (agent default)', startupGrace: '30 s (hub default)' },
      figures: { ...setup.figures, runs: results, resyncAllSecondsMedian: median, agentsConnectedAtEnd: final.connected, agentLastErrors: final.lastErrors },
      hub: hubFigures,
      checks: {
        everyAgentResynced: results.every((r) => r.notResynced === 0),
        noNodeDown: maxDown === 0,
        noAgentGaveUp: final.connected === nodes,
      },
      targets: {
        resyncAllSeconds: { value: median, target: '<= 60 s at 10 000 agents (median of runs)', met: nodes >= 10_000 ? worst <= 60 : null },
        nodesDown: { value: maxDown, target: '0', met: maxDown === 0 },
      },
      notes: ['Time is from spawning the new hub process (after SIGKILL of the old one) until the last agent committed its full resync; resyncFromKillSeconds adds the hub start.'],
      headline: `reconnect-storm ${nodes} agents: all resynced ${median} s after the hub restart (target <= 60), ${maxDown} Down (target 0), ${nodes - final.connected} gave up`,
    }, stringFlag(args, 'results'), []);
  } finally {
    monitor?.stop();
    await setup?.fleet.stop(5000).catch(() => undefined);
    await hub?.kill();
    await setup?.cleanup();
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;
