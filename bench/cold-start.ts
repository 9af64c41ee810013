// Offline cold start: an agent whose node lost power (agent and instances killed) starts with
// the hub unreachable; how long from process start until all its cached instances run?
// Target (architecture.md): <= 2 s. Options: --instances N (20) --runs R (5).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Instance } from '../shared/api/index.js';
import { TestCluster, killGroup, repoRoot } from '../test/helpers/cluster.js';
import { waitFor } from '../test/helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

export async function coldStart(args: string[]): Promise<void> {
  const instances = flag(args, 'instances', 20);
  const runs = flag(args, 'runs', 5);
  const cluster = new TestCluster();
  const pids = new Set<number>();
  try {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'bench' }, spec: {} });
    const agent = await cluster.startAgent('cold', 'bench');
    await cluster.api('POST', `${API}/edgeapps`, {
      apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'fleet' },
      spec: { units: { names: ['bench'] }, replicasPerUnit: instances, template: { processes: [{ command: 'sleep', args: ['100000'] }] } },
    });
    await waitFor(async () => (await cluster.api<{ items: Instance[] }>('GET', `${API}/instances`)).items.filter((i) => i.status?.phase === 'Running').length === instances, { timeoutMs: 60_000, message: 'all running' });
    const hubUrl = cluster.requireHub().url;
    await cluster.requireHub().kill();
    let current: { kill(): Promise<void>; localApi: string } = agent;
    const timesMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const status = (await (await fetch(`${current.localApi}/v1/status`)).json()) as { instances: Record<string, { pid?: number }> };
      await current.kill();
      for (const s of Object.values(status.instances)) if (s.pid) killGroup(s.pid); // power cut
      const started = performance.now();
      current = await cluster.restartAgent('cold', hubUrl);
      await waitFor(async () => {
        const s = (await (await fetch(`${current.localApi}/v1/status`)).json()) as { instances: Record<string, { phase: string; pid?: number }> };
        const up = Object.values(s.instances).filter((i) => i.phase === 'Running');
        for (const i of up) if (i.pid) pids.add(i.pid);
        return up.length === instances;
      }, { timeoutMs: 30_000, intervalMs: 10, message: 'all instances running from the cache' });
      timesMs.push(Math.round(performance.now() - started));
    }
    await current.kill();
    const report = {
      scenario: 'cold-start', date: new Date().toISOString(), inputs: { instances, runs },
      machine: { cpus: cpus().length, memoryBytes: totalmem(), node: process.version },
      figures: { timesMs, p50Ms: pct(timesMs, 50), maxMs: Math.max(...timesMs) },
      note: 'from spawning `outpost agent` (node + tsx loader) with the hub down until every cached instance is Running, per the agent local API',
    };
    mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
    writeFileSync(join(repoRoot, 'bench/results/cold-start.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`cold start offline, ${instances} instances, ${runs} runs: ${timesMs.join(', ')} ms`);
    console.log(`cold-start p50 ${report.figures.p50Ms} ms, max ${report.figures.maxMs} ms (target <= 2000 ms)`);
  } finally {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  }
}


