import { readFileSync, readdirSync } from 'node:fs';
import { processExists } from '../../shared/process.js';

/** The fields of `/proc/<pid>/stat` the runtime uses (proc(5)). */
export interface ProcStat {
  pid: number;
  /** Executable name without the surrounding parentheses; may contain spaces and ')'. */
  comm: string;
  /** One letter: R S D Z T t X I ... */
  state: string;
  ppid: number;
  pgrp: number;
  /** Field 22: time the process started after boot, in clock ticks. With the pid it identifies a process. */
  startTime: number;
}

/** What became of a recorded process. `reused`: its pid now belongs to another process. */
export type Liveness = 'alive' | 'gone' | 'reused';

/**
 * Parses the text of `/proc/<pid>/stat`, or returns undefined when it is malformed. The comm
 * field (2) is in parentheses and may itself contain spaces and parentheses, so the fields after
 * it are split after the LAST ')'.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const pgrp = Number(rest[2]);
  const startTime = Number(rest[19]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || state === undefined || !/^[A-Za-z]$/.test(state)) return undefined;
  if (![ppid, pgrp, startTime].every((n) => Number.isSafeInteger(n) && n >= 0)) return undefined;
  return { pid, comm: text.slice(open + 1, close), state, ppid, pgrp, startTime };
}

/** Whether this system has a Linux-style /proc; without it liveness falls back to `kill(pid, 0)`. */
export function hasProcFs(): boolean {
  return parseProcStat(readOrEmpty('/proc/self/stat')) !== undefined;
}

/** The stat of a process, or undefined when there is no such process (or /proc is unavailable). */
export function readProcStat(pid: number): ProcStat | undefined {
  return parseProcStat(readOrEmpty(`/proc/${pid}/stat`));
}

/** The start time (clock ticks after boot) of a process, or null when it cannot be read. */
export function readStartTime(pid: number): number | null {
  return readProcStat(pid)?.startTime ?? null;
}

/**
 * Whether the process recorded as (pid, startTime) still runs. A zombie counts as gone: it runs
 * nothing, and on a node whose init does not reap orphans it would otherwise look alive forever.
 * A null startTime (unknown, or a system without /proc) compares by pid only.
 */
export function checkProcess(pid: number, startTime: number | null, procFs: boolean): Liveness {
  if (procFs) {
    const stat = readProcStat(pid);
    if (!stat || isDead(stat)) return 'gone';
    if (startTime !== null && stat.startTime !== startTime) return 'reused';
    return 'alive';
  }
  return processExists(pid) ? 'alive' : 'gone';
}

/** Whether any live (non-zombie) process is in process group `pgid`. */
export function processGroupAlive(pgid: number, procFs: boolean): boolean {
  if (!procFs) return processExists(-pgid);
  return processGroupMembers(pgid).length > 0;
}

/** Pids of the live (non-zombie) processes of process group `pgid` (Linux only; [] without /proc). */
export function processGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat && stat.pgrp === pgid && !isDead(stat)) members.push(stat.pid);
  }
  return members;
}

function isDead(stat: ProcStat): boolean {
  return stat.state === 'Z' || stat.state === 'X' || stat.state === 'x';
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
