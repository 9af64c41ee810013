import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, loadavg } from 'node:os';
import { join } from 'node:path';
import type { HubFigures } from './process-monitor.js';
import { repoRoot } from './hub-process.js';

/** A figure against its target; `met` is null when the run was too small to judge it. */
export interface TargetResult {
  value: number | null;
  target: string;
  met: boolean | null;
}

/** Everything a scenario's report holds (bench/results/<scenario>.json). */
export interface BenchReport {
  scenario: string;
  date: string;
  inputs: Record<string, unknown>;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; node: string; loadAverageAtStart: number[] };
  figures: Record<string, unknown>;
  /** Hub RSS and event-loop delay during the run (absent for agent-only scenarios). */
  hub?: HubFigures;
  /** Correctness checks: the smoke test requires every one to be true. */
  checks: Record<string, boolean>;
  targets: Record<string, TargetResult>;
  notes: string[];
  headline: string;
}

const loadAtStart = loadavg();

export function machine(): BenchReport['machine'] {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memoryBytes: totalmem(), node: process.version, loadAverageAtStart: loadAtStart.map((v) => Math.round(v * 100) / 100) };
}

/**
 * Writes the report (to --results DIR, default bench/results), prints the human summary, and
 * prints the headline as the very last line. A failed check sets the exit code to 1.
 */
export function finish(report: Omit<BenchReport, 'date' | 'machine'>, resultsDir: string | undefined, summary: string[]): BenchReport {
  const { scenario, inputs, ...rest } = report;
  const full: BenchReport = { scenario, date: new Date().toISOString(), inputs, machine: machine(), ...rest };
  const dir = resultsDir ?? join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${report.scenario}.json`), `${JSON.stringify(full, null, 2)}\n`);
  for (const line of summary) console.log(line);
  if (full.hub) console.log(`hub: RSS max ${full.hub.rssMaxMiB} MiB, event-loop delay p99 max ${full.hub.eventLoopP99MaxMs} ms (median ${full.hub.eventLoopP99MedianMs} ms), CPU ${full.hub.cpuCores} cores`);
  for (const [name, t] of Object.entries(full.targets)) console.log(`target ${name}: ${t.value ?? 'n/a'} (${t.target}) ${t.met === null ? 'not judged' : t.met ? 'met' : 'MISSED'}`);
  const failed = Object.entries(full.checks).filter(([, ok]) => !ok).map(([k]) => k);
  console.log(failed.length ? `checks FAILED: ${failed.join(', ')}` : `checks passed: ${Object.keys(full.checks).join(', ')}`);
  console.log(`report: ${join(dir, `${report.scenario}.json`)}`);
  console.log(full.headline);
  if (failed.length) process.exitCode = 1;
  return full;
}

/** `--name value` as a number, or the default; a malformed value is an error naming the flag. */
export function numberFlag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number >= 0, got ${JSON.stringify(args[i + 1] ?? null)}`);
  return v;
}

export function stringFlag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

export const boolFlag = (args: string[], name: string): boolean => args.includes(`--${name}`);

/** Nearest-rank percentile; NaN for an empty list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function distribution(values: number[]): { n: number; p50: number | null; p99: number | null; max: number | null } {
  const r = (v: number) => (Number.isNaN(v) ? null : Math.round(v));
  return { n: values.length, p50: r(percentile(values, 50)), p99: r(percentile(values, 99)), max: r(percentile(values, 100)) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `intervalMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
