import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { InstanceAccount } from './accounting.js';
import type { CheckResult } from './checks.js';
import { FAULT_KINDS, type CrashRecord, type FaultKind, type FaultRecord } from './faults.js';
import type { FaultProxyStats } from './fault-proxy.js';
import type { WorkloadOpKind } from './workload.js';

export interface ChaosInputs {
  seed: number;
  agents: number;
  durationS: number;
  units: number;
  /** The command that replays this run. */
  replay: string;
}

export interface WorkloadLogEntry {
  plannedAtMs: number;
  doneAtMs?: number;
  op: string;
  kind: WorkloadOpKind;
  error?: string;
}

/** The JSON report of one run (chaos/results/last-run.json). */
export interface ChaosReport {
  inputs: ChaosInputs;
  runId: string;
  startedAt: string;
  node: string;
  tempDir: string;
  tempDirKept: boolean;
  pass: boolean;
  /** "<check>: <detail>", one per problem; empty when the run passed. */
  violations: string[];
  /** Set when the run could not get as far as the checks (setup failed, aborted). */
  error?: string;
  timings: {
    /** Wall-clock start of the fault phase: every `...AtMs` of the logs counts from here. */
    chaosStartedAt?: string;
    setupMs?: number;
    chaosMs?: number;
    healMs?: number;
    convergence?: { perAgentMs: Record<string, number | null>; p50Ms: number | null; maxMs: number | null };
    totalMs?: number;
  };
  faults: {
    /** Per kind: planned, done (injected), skipped (no target in a state to take it), failed. */
    counts: Record<FaultKind, { planned: number; done: number; skipped: number; failed: number }>;
    log: FaultRecord[];
    crashes: CrashRecord[];
  };
  workload: { counts: Partial<Record<WorkloadOpKind, number>>; log: WorkloadLogEntry[] };
  observed: {
    phaseChanges?: number;
    disconnects?: number;
    watchReconnects?: number;
    eventsByReason?: Record<string, number>;
    proxies?: Record<string, FaultProxyStats>;
  };
  checks: CheckResult[];
  /** Restart accounting per instance and node (see accounting.ts). */
  accounts: InstanceAccount[];
}

export function faultCounts(log: FaultRecord[]): ChaosReport['faults']['counts'] {
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, { planned: 0, done: 0, skipped: 0, failed: 0 }])) as ChaosReport['faults']['counts'];
  for (const r of log) {
    const c = counts[r.kind];
    c.planned++;
    if (r.outcome === 'done' || r.outcome === 'active') c.done++;
    else if (r.outcome === 'failed') c.failed++;
    else c.skipped++;
  }
  return counts;
}

/** The human summary: one PASS/FAIL line per check, the figures, the seed and the replay command. */
export function formatReport(r: ChaosReport): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(`chaos run ${r.runId}: seed ${r.inputs.seed}, ${r.inputs.agents} agents in ${r.inputs.units} units, ${r.inputs.durationS}s`);
  const done = FAULT_KINDS.filter((k) => r.faults.counts[k].planned > 0).map((k) => {
    const c = r.faults.counts[k];
    return `${k} ${c.done}${c.skipped || c.failed ? ` (+${c.skipped} skipped${c.failed ? `, ${c.failed} FAILED` : ''})` : ''}`;
  });
  lines.push(`faults: ${done.join(', ') || 'none'}`);
  const ops = Object.entries(r.workload.counts).map(([k, n]) => `${k} ${n}`);
  lines.push(`desired-state changes: ${ops.join(', ') || 'none'}`);
  const conv = r.timings.convergence;
  if (conv) lines.push(`heal to convergence: p50 ${fmtMs(conv.p50Ms)}, max ${fmtMs(conv.maxMs)} (heal itself took ${fmtMs(r.timings.healMs ?? null)})`);
  if (r.error) lines.push(`ERROR: ${r.error}`);
  for (const c of r.checks) {
    lines.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}`);
    const shown = c.pass ? c.details.slice(0, 1) : c.details.slice(0, 25);
    for (const d of shown) lines.push(`        ${d}`);
    if (!c.pass && c.details.length > shown.length) lines.push(`        ... ${c.details.length - shown.length} more in the JSON report`);
  }
  lines.push(r.pass ? `RESULT: PASS (seed ${r.inputs.seed})` : `RESULT: FAIL, ${r.violations.length} violation(s) (seed ${r.inputs.seed})`);
  lines.push(`replay: ${r.inputs.replay}`);
  if (r.tempDirKept) lines.push(`data, logs and start records kept in ${r.tempDir}`);
  return lines.join('\n');
}

export function writeReport(path: string, r: ChaosReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(r, null, 2)}\n`);
}

function fmtMs(ms: number | null): string {
  return ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`;
}
