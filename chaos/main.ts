// The chaos harness (issue 3, item 7): `npm run chaos -- [--agents N] [--duration S] [--seed K]
// [--units U] [--keep]`. Starts a real hub and N real agents behind fault-injecting proxies, runs
// a seeded plan of faults and desired-state changes, heals, and checks that nothing acknowledged
// was lost, nothing reported twice, no node went Down and no instance restarted without cause.
// Exits 1 on any violation; the seed is always printed, with the command that replays the run.
import { realpathSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatReport, writeReport } from './report.js';
import { randomSeed } from './rng.js';
import { runChaos, type ChaosOptions } from './run.js';
import { registryMain } from './registry/registry-main.js';

/** Where the JSON report of the latest run is written. */
export const REPORT_FILE = resolve(import.meta.dirname, 'results/last-run.json');

const USAGE = `usage: npm run chaos -- [--agents N] [--duration S] [--seed K] [--units U] [--keep] [--report FILE]
  --agents N     agent processes (default 6)
  --duration S   seconds of faults and changes before the heal (default 60)
  --seed K       seed of every random decision, 0..4294967295 (default: random, always printed)
  --units U      node units the agents are spread over (default 3)
  --keep         keep the temp dir (data, logs, start records) also when the run passes
  --converge-timeout S   seconds the cluster may take to converge after the heal (default 60)
  --report FILE  where the JSON report goes (default chaos/results/last-run.json)`;

/** Parses the command line; throws with a usage message on bad input. */
export function parseChaosArgs(argv: string[]): Omit<ChaosOptions, 'log' | 'signal'> & { reportFile: string } {
  const { values } = parseArgs({
    // `npx tsx chaos/main.ts -- --agents 3` passes the `--` through: it separates nothing here.
    args: argv.filter((a) => a !== '--'),
    options: {
      agents: { type: 'string' },
      duration: { type: 'string' },
      seed: { type: 'string' },
      units: { type: 'string' },
      keep: { type: 'boolean' },
      'converge-timeout': { type: 'string' },
      report: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) throw new Error(USAGE);
  const int = (v: string | undefined, name: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${name} ${v}: expected a whole number from ${min} to ${max}\n${USAGE}`);
    return n;
  };
  const agents = int(values.agents, 'agents', 6, 1, 64);
  const units = int(values.units, 'units', 3, 1, 64);
  if (units > agents) throw new Error(`--units ${units} is more than --agents ${agents}: every unit needs an agent`);
  return {
    agents,
    units,
    durationS: int(values.duration, 'duration', 60, 5, 24 * 3600),
    seed: int(values.seed, 'seed', randomSeed(), 0, 2 ** 32 - 1),
    keep: values.keep ?? false,
    convergeTimeoutS: int(values['converge-timeout'], 'converge-timeout', 60, 5, 3600),
    reportFile: values.report ? resolve(values.report) : REPORT_FILE,
  };
}

export async function main(argv: string[]): Promise<number> {
  // `--mode registry`: the local service registry scenario (chaos/registry/), its own options.
  const mode = argv.indexOf('--mode');
  if (mode >= 0) {
    if (argv[mode + 1] !== 'registry') {
      console.error(`--mode ${argv[mode + 1] ?? ''}: the only mode is registry (without --mode: the orchestration run)`);
      return 2;
    }
    return registryMain(argv.filter((_, i) => i !== mode && i !== mode + 1));
  }
  let options: ReturnType<typeof parseChaosArgs>;
  try {
    options = parseChaosArgs(argv);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  console.log(`chaos: seed ${options.seed} (${options.agents} agents, ${options.units} units, ${options.durationS}s)`);
  const controller = new AbortController();
  const onSignal = (sig: string) => {
    console.error(`chaos: ${sig}: stopping and cleaning up (again to force)`);
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = Date.now();
  const report = await runChaos({ ...options, signal: controller.signal, log: (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`) });
  writeReport(options.reportFile, report);
  console.log(formatReport(report));
  console.log(`report: ${relative(process.cwd(), options.reportFile)}`);
  return report.pass ? 0 : 1;
}

const invoked = process.argv[1] ? pathToFileURL(realpathSync(process.argv[1])).href : '';
if (invoked === import.meta.url) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
