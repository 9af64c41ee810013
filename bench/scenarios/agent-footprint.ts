// agent-footprint: one real agent (`outpost agent`, embedded MQTT broker on) running N process
// instances: idle RSS and CPU once everything runs, then cold starts offline (hub down, agent and
// instances killed as by a power cut) until every cached instance runs again.
// Targets: idle RSS <= 60 MiB; cold start <= 2 s. Options: --instances N (20) --settle S (30: from
// all instances running to the idle window; with the launcher's --single-threaded-gc the first GC
// that gives back the start-up heap comes 13-25 s after that) --idle S (30)
// --runs R (5) --results DIR --from-source (run the TypeScript sources through tsx, as before the
// compiled build; by default the scenario builds dist/ when it is stale, as `npm ci` does for users)
// --plain (start the agent as `node bin/outpost.js agent` instead of through bin/outpost-agent, the
// production launcher with MALLOC_ARENA_MAX=1 --single-threaded-gc --v8-pool-size=1; for comparison).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance } from '../../shared/api/index.js';
import { distIsCurrent } from '../../bin/dist-stamp.js';
import { TestCluster, killGroup, repoRoot } from '../../test/helpers/cluster.js';
import { waitFor } from '../../test/helpers/wait.js';
import { cpuSecondsOf, rssOf } from '../harness/process-monitor.js';
import { distribution, finish, numberFlag, percentile, sleep, stringFlag } from '../harness/report.js';

const API = '/apis/outpost.dev/v1alpha1';

type Status = { instances: Record<string, { phase: string; pid?: number }> };

/** What bin/outpost.js runs right now: the compiled build (dist/) or the sources through tsx. */
async function runsFrom(fromSource: boolean): Promise<'dist' | 'sources'> {
  return !fromSource && (await distIsCurrent(repoRoot)) ? 'dist' : 'sources';
}

/** How the agent process was started: its command line and the environment that matters here. */
function startedAs(pid: number): { cmdline: string[]; MALLOC_ARENA_MAX: string | null } {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const arena = env.find((e) => e.startsWith('MALLOC_ARENA_MAX='));
    return { cmdline, MALLOC_ARENA_MAX: arena ? arena.slice('MALLOC_ARENA_MAX='.length) : null };
  } catch {
    return { cmdline: [], MALLOC_ARENA_MAX: null };
  }
}

/** kB fields of /proc/PID/status and /proc/PID/smaps_rollup, MiB. */
function memoryBreakdown(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  const read = (file: string, keys: string[]) => {
    try {
      const text = readFileSync(file, 'utf8');
      for (const k of keys) {
        const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text);
        if (m) out[k] = Math.round(Number(m[1]) / 1024 * 10) / 10;
      }
    } catch { /* gone */ }
  };
  read(`/proc/${pid}/status`, ['VmRSS', 'RssAnon', 'RssFile']);
  read(`/proc/${pid}/smaps_rollup`, ['Pss', 'Private_Dirty', 'Shared_Clean']);
  return out;
}

export async function agentFootprint(args: string[]): Promise<void> {
  const instances = numberFlag(args, 'instances', 20);
  const idleS = numberFlag(args, 'idle', 30);
  const settleS = numberFlag(args, 'settle', 30);
  const runs = Math.max(1, numberFlag(args, 'runs', 5));
  const fromSource = args.includes('--from-source');
  const plain = args.includes('--plain');
  const launcher = plain ? 'node bin/outpost.js agent' : 'bin/outpost-agent';
  if (fromSource) process.env.OUTPOST_FROM_SOURCE = '1';
  else if ((await runsFrom(false)) === 'sources') {
    // Users run what `npm ci` built; a checkout with edited sources gets the same build first.
    const b = spawnSync(process.execPath, [join(repoRoot, 'scripts/build.js')], { encoding: 'utf8' });
    console.log(b.stdout.trim() || b.stderr.trim());
  }
  const startedFrom: string[] = [];
  const cluster = new TestCluster();
  if (!plain) {
    cluster.agentLauncher = join(repoRoot, 'bin/outpost-agent');
    cluster.agentEnv = { OUTPOST_NODE: process.execPath }; // the node that runs the bench, as for --plain
  }
  const pids = new Set<number>();
  try {
    await cluster.startHub();
    await cluster.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: 'bench' }, spec: {} });
    // Default agent settings apart from the test cluster's short deadlines; log level info like production.
    startedFrom.push(await runsFrom(fromSource));
    let agent = await cluster.startAgent('footprint', 'bench');
    await cluster.api('POST', `${API}/edgeapps`, {
      apiVersion: 'outpost.dev/v1alpha1', kind: 'EdgeApp', metadata: { name: 'fleet' },
      spec: { units: { names: ['bench'] }, replicasPerUnit: instances, template: { processes: [{ command: 'sleep', args: ['100000'] }] } },
    });
    await waitFor(async () => (await cluster.api<{ items: Instance[] }>('GET', `${API}/instances`)).items.filter((i) => i.status?.phase === 'Running').length === instances, { timeoutMs: 60_000, message: 'all instances running' });
    const status = async (localApi: string) => (await (await fetch(`${localApi}/v1/status`)).json()) as Status;
    for (const s of Object.values((await status(agent.localApi)).instances)) if (s.pid) pids.add(s.pid);
    await sleep(settleS * 1000); // settle: reports flushed, timers at their steady period, the start-up heap collected
    const pid = agent.child.pid!;
    const agentProcess = startedAs(pid);
    // The launcher execs node: the pid is the agent's node process itself.
    const agentNodeFlags = agentProcess.cmdline.slice(1, Math.max(1, agentProcess.cmdline.findIndex((a) => a.endsWith('outpost.js'))));
    const rss: number[] = [];
    const cpu0 = cpuSecondsOf(pid) ?? 0;
    const t0 = Date.now();
    while (Date.now() - t0 < idleS * 1000) {
      rss.push(rssOf(pid) ?? 0);
      await sleep(1000);
    }
    const cpuPercent = Math.round((((cpuSecondsOf(pid) ?? 0) - cpu0) / ((Date.now() - t0) / 1000)) * 1000) / 10;
    const idleMemory = memoryBreakdown(pid);
    const idleRssMiB = Math.round(percentile(rss, 50) / 1048576 * 10) / 10;
    const idleRssMaxMiB = Math.round(Math.max(...rss) / 1048576 * 10) / 10;
    console.log(`idle with ${instances} instances, hub connected: RSS median ${idleRssMiB} MiB (max ${idleRssMaxMiB}), CPU ${cpuPercent}% of one core; at the end (MiB): ${JSON.stringify(idleMemory)}; agent ran from ${startedFrom[0]}, started with ${launcher} (node flags: ${agentNodeFlags.join(' ') || 'none'}, MALLOC_ARENA_MAX=${agentProcess.MALLOC_ARENA_MAX ?? 'unset'})`);

    // Cold starts: hub gone; each run kills the agent and its instances (power cut) and starts it again.
    const hubUrl = cluster.requireHub().url;
    await cluster.requireHub().kill();
    const timesMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const before = await status(agent.localApi);
      await agent.kill();
      for (const s of Object.values(before.instances)) if (s.pid) killGroup(s.pid);
      startedFrom.push(await runsFrom(fromSource));
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
    if (new Set(startedFrom).size > 1) console.log(`warning: the agent starts ran different code (${startedFrom.join(', ')}): a source changed during the run`);
    const offlineRssMiB = Math.round((rssOf(agent.child.pid!) ?? 0) / 1048576 * 10) / 10;
    await agent.kill();
    const cold = distribution(timesMs);
    finish({
      scenario: 'agent-footprint',
      inputs: { instances, settleSeconds: settleS, idleSeconds: idleS, coldStartRuns: runs, broker: 'embedded aedes on 127.0.0.1:0', registry: 'as built into the agent at the time of the run', logLevel: 'info', agentStartedFrom: startedFrom, launcher, agentNodeFlags, agentMallocArenaMax: agentProcess.MALLOC_ARENA_MAX, agentCmdline: agentProcess.cmdline },
      figures: { everyStartRanTheSameCode: new Set(startedFrom).size === 1, idleRssMedianMiB: idleRssMiB, idleRssMaxMiB, idleRssSamplesMiB: rss.map((b) => Math.round(b / 1048576 * 10) / 10), idleMemoryAtEndMiB: idleMemory, idleCpuPercentOfOneCore: cpuPercent, offlineRssAfterColdStartMiB: offlineRssMiB, coldStartMs: timesMs, coldStart: cold },
      // Not a check: a source edited during the run (a shared checkout) makes later starts run the
      // sources; the report says so rather than failing the run (and the smoke test in npm test).
      checks: { allInstancesRanFromCache: timesMs.length === runs },
      targets: {
        idleRssMiB: { value: idleRssMiB, target: '<= 60 MiB', met: idleRssMiB <= 60 },
        coldStartP50Ms: { value: cold.p50, target: '<= 2000 ms', met: cold.p50 !== null && cold.p50 <= 2000 },
      },
      notes: [
        'inputs.launcher: bin/outpost-agent is how users start the agent in production (README); --plain starts `node bin/outpost.js agent` (only --semi-space-growth-factor=1, set by bin/outpost.js). inputs.agentNodeFlags and agentMallocArenaMax are read from /proc/PID/cmdline and /proc/PID/environ of the idle agent.',
        'The agent runs through bin/outpost.js as users run it: the compiled build (dist/, made by npm ci) when current, else the sources through tsx (inputs.agentStartedFrom: the idle start, then each cold start; --from-source forces the sources).',
        'idleMemoryAtEndMiB: VmRSS = RssAnon (V8 heap, malloc) + RssFile (mostly the node binary, shared with every node process: Shared_Clean); Pss counts shared pages divided among the processes mapping them.',
        'Cold start: from spawning the agent with the hub down until its local API shows every cached instance Running.',
      ],
      headline: `agent-footprint ${instances} instances (agent from ${startedFrom[0]}, ${launcher}): idle RSS ${idleRssMiB} MiB (target <= 60), CPU ${cpuPercent}%, offline cold start p50 ${cold.p50} ms, max ${cold.max} ms (target <= 2000)`,
    }, stringFlag(args, 'results'), []);
  } finally {
    await cluster.cleanup();
    for (const p of pids) killGroup(p);
  }
}
