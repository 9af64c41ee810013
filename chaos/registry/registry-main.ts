// `npm run chaos -- --mode registry [--agents N] [--duration S] [--seed K] [--keep] [--report FILE]`
import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomSeed } from '../rng.js';
import { formatRegistryReport, runRegistryChaos } from './registry-run.js';

const USAGE = `usage: npm run chaos -- --mode registry [--agents N] [--duration S] [--seed K] [--keep] [--report FILE]
  --agents N     agents of the one unit (default 3)
  --duration S   seconds of kills, pauses and registry operations before the heal (default 30)
  --seed K       seed of every random decision (default: random, always printed)
  --converge-limit S   every node must converge within S seconds of the heal (default 10)
  --keep         keep the temp dir also when the run passes
  --report FILE  where the JSON report goes (default chaos/results/registry-last-run.json)`;

export async function registryMain(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv.filter((a) => a !== '--'),
      options: { agents: { type: 'string' }, duration: { type: 'string' }, seed: { type: 'string' }, 'converge-limit': { type: 'string' }, keep: { type: 'boolean' }, report: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values;
    if (values.help) throw new Error(USAGE);
  } catch (err) {
    console.error((err as Error).message.includes('usage:') ? (err as Error).message : `${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const int = (v: unknown, name: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (typeof v !== 'string' || !/^\d+$/.test(v) || n < min || n > max) throw new Error(`--${name} ${String(v)}: expected a whole number from ${min} to ${max}\n${USAGE}`);
    return n;
  };
  let opts;
  try {
    opts = {
      agents: int(values.agents, 'agents', 3, 2, 16),
      durationS: int(values.duration, 'duration', 30, 5, 24 * 3600),
      seed: int(values.seed, 'seed', randomSeed(), 0, 2 ** 32 - 1),
      convergeLimitS: int(values['converge-limit'], 'converge-limit', 10, 1, 600),
      keep: values.keep === true,
    };
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const reportFile = typeof values.report === 'string' ? resolve(values.report) : resolve(import.meta.dirname, '../results/registry-last-run.json');
  console.log(`chaos registry: seed ${opts.seed} (${opts.agents} agents, ${opts.durationS}s)`);
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = Date.now();
  const report = await runRegistryChaos({ ...opts, signal: controller.signal, log: (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`) });
  mkdirSync(dirname(reportFile), { recursive: true });
  writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(formatRegistryReport(report));
  console.log(`report: ${relative(process.cwd(), reportFile)}`);
  return report.pass ? 0 : 1;
}
