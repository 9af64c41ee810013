// agent-footprint: one real agent (`outpost agent`, embedded MQTT broker on) running N process
// instances: idle RSS and CPU once everything runs, then cold starts offline (hub down, agent and
// instances killed as by a power cut) until every cached instance runs again.
// Targets: idle RSS <= 60 MiB; cold start <= 2 s. Options: --instances N (20) --idle S (30)
// --runs R (5) --results DIR
import type { Instance } from '../../shared/api/index.js';
import { TestCluster, killGroup } from '../../test/helpers/cluster.js';
import { waitFor } from '../../test/helpers/wait.js';
import { cpuSecondsOf, rssOf } from '../harness/process-monitor.js';
import { distribution, finish, numberFlag, percentile, sleep, stringFlag } from '../harness/report.js';

const API = '/apis/outpost.dev/v1alpha1';

type Status = { instances: Record<string, { phase: string; pid?: number }> };

export async function agentFootprint(args: string[]): Promise<void> {
  const instances = numberFlag(args, 'instances', 20);
  const idleS = numberFlag(args, 'idle', 30);
  const runs = Math.max(1, numberFlag(args, 'runs', 5));
  const cluster = new TestCluster();
  const pids = new Set<number>();
  try {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'bench' }, spec: {} });
    // Default agent settings apart from the test cluster's short deadlines; log level info like production.
    let agent = await cluster.startAgent('footprint', 'bench');
    await cluster.api('POST', `${API}/edgeapps`, {
      apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'fleet' },
      spec: { units: { names: ['bench'] }, replicasPerUnit: instances, template: { processes: [{ command: 'sleep', args: ['100000'] }] } },
    });
    await waitFor(async () => (await cluster.api<{ items: Instance[] }>('GET', `${API}/instances`)).items.filter((i) => i.status?.phase === 'Running').length === instances, { timeoutMs: 60_000, message: 'all instances running' });
    const status = async (localApi: string) => (await (await fetch(`${localApi}/v1/status`)).json()) as Status;
    for (const s of Object.values((await status(agent.localApi)).instances)) if (s.pid) pids.add(s.pid);
    await sleep(5000); // settle: reports flushed, timers at their steady period
    const pid = agent.child.pid!;
    const rss: number[] = [];
    const cpu0 = cpuSecondsOf(pid) ?? 0;
    const t0 = Date.now();
    while (Date.now() - t0 < idleS * 1000) {
      rss.push(rssOf(pid) ?? 0);
      await sleep(1000);
    }
    const cpuPercent = Math.round((((cpuSecondsOf(pid) ?? 0) - cpu0) / ((Date.now() - t0) / 1000)) * 1000) / 10;
    const idleRssMiB = Math.round(percentile(rss, 50) / 1048576 * 10) / 10;
    const idleRssMaxMiB = Math.round(Math.max(...rss) / 1048576 * 10) / 10;
    console.log(`idle with ${instances} instances, hub connected: RSS median ${idleRssMiB} MiB (max ${idleRssMaxMiB}), CPU ${cpuPercent}% of one core`);

    // Cold starts: hub gone; each run kills the agent and its instances (power cut) and starts it again.
    const hubUrl = cluster.requireHub().url;
    await cluster.requireHub().kill();
    const timesMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const before = await status(agent.localApi);
      await agent.kill();
      for (const s of Object.values(before.instances)) if (s.pid) killGroup(s.pid);
      const started = performance.now();
      agent = await cluster.restartAgent('footprint', hubUrl);
      const current = agent;
      await waitFor(async () => {
        const up = Object.values((await status(current.localApi)).instances).filter((i) => i.phase === 'Running');
        for (const i of up) if (i.pid) pids.add(i.pid);
        return up.length === instances;
      }, { timeoutMs: 30_000, intervalMs: 10, message: 'all instances running from the cache' });
      timesMs.push(Math.round(performance.now() - started));
    }
    const offlineRssMiB = Math.round((rssOf(agent.child.pid!) ?? 0) / 1048576 * 10) / 10;
    await agent.kill();
    const cold = distribution(timesMs);
    finish({
      scenario: 'agent-footprint',
      inputs: { instances, idleSeconds: idleS, coldStartRuns: runs, broker: 'embedded aedes on 127.0.0.1:0', registry: 'as built into the agent at the time of the run', logLevel: 'info' },
      figures: { idleRssMedianMiB: idleRssMiB, idleRssMaxMiB, idleCpuPercentOfOneCore: cpuPercent, offlineRssAfterColdStartMiB: offlineRssMiB, coldStartMs: timesMs, coldStart: cold },
      checks: { allInstancesRanFromCache: timesMs.length === runs },
      targets: {
        idleRssMiB: { value: idleRssMiB, target: '<= 60 MiB', met: idleRssMiB <= 60 },
        coldStartP50Ms: { value: cold.p50, target: '<= 2000 ms', met: cold.p50 !== null && cold.p50 <= 2000 },
      },
      notes: [
        'The agent runs through bin/outpost.js (node + tsx loader, TypeScript compiled at start); a build with `npm run build` starts faster and uses less memory.',
        'Cold start: from spawning the agent with the hub down until its local API shows every cached instance Running.',
      ],
      headline: `agent-footprint ${instances} instances: idle RSS ${idleRssMiB} MiB (target <= 60), CPU ${cpuPercent}%, offline cold start p50 ${cold.p50} ms, max ${cold.max} ms (target <= 2000)`,
    }, stringFlag(args, 'results'), []);
  } finally {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  }
}
