import { readdirSync, readFileSync } from 'node:fs';
import { readProcStat } from '../edge-agent/runtime/proc-stat.js';

/** Template env var that marks the instance processes of one run. */
export const INSTANCE_RUN_ENV = 'CHAOS_RUN';

/** A live (non-zombie) instance process of this run, found through /proc. */
export interface InstanceProc {
  pid: number;
  /** OUTPOST_INSTANCE of its environment. */
  instance: string;
  /** OUTPOST_NODE of its environment: the agent that started it. */
  node: string;
  /** GEN of its environment: the template generation it runs. */
  gen: string;
  pgrp: number;
}

/**
 * Every live process whose environment carries `CHAOS_RUN=<runId>` and an OUTPOST_INSTANCE: the
 * ground truth of what runs, whatever the agents believe. Zombies are left out (they run
 * nothing). The environment is read, not the command line: it survives `exec` and cannot be
 * confused with another run's processes.
 */
export function scanInstanceProcs(runId: string): InstanceProc[] {
  const out: InstanceProc[] = [];
  for (const p of scanEnv((env) => env.get(INSTANCE_RUN_ENV) === runId && env.has('OUTPOST_INSTANCE'))) {
    out.push({ pid: p.pid, pgrp: p.pgrp, instance: p.env.get('OUTPOST_INSTANCE') ?? '', node: p.env.get('OUTPOST_NODE') ?? '', gen: p.env.get('GEN') ?? '' });
  }
  return out.sort((a, b) => a.instance.localeCompare(b.instance) || a.node.localeCompare(b.node) || a.pid - b.pid);
}

/** Live processes whose environment has `name=value` (hub and agents of a run carry one). */
export function scanProcsWithEnv(name: string, value: string): { pid: number; pgrp: number }[] {
  return scanEnv((env) => env.get(name) === value).map(({ pid, pgrp }) => ({ pid, pgrp }));
}

/** SIGKILLs the process group of every instance process of the run; returns how many groups. */
export function killInstanceGroups(runId: string): number {
  const groups = new Set(scanInstanceProcs(runId).map((p) => p.pgrp));
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return groups.size;
}

/** Whether `pid` is a live, non-zombie process. */
export function procAlive(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X' && st.state !== 'x';
}

function scanEnv(match: (env: Map<string, string>) => boolean): { pid: number; pgrp: number; env: Map<string, string> }[] {
  const out: { pid: number; pgrp: number; env: Map<string, string> }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let raw: string;
    try {
      raw = readFileSync(`/proc/${entry}/environ`, 'utf8');
    } catch {
      continue; // gone, or not ours
    }
    if (!raw.includes('=')) continue;
    const env = new Map<string, string>();
    for (const kv of raw.split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
    }
    if (!match(env)) continue;
    const st = readProcStat(pid);
    if (!st || st.state === 'Z' || st.state === 'X' || st.state === 'x') continue;
    out.push({ pid, pgrp: st.pgrp, env });
  }
  return out;
}
