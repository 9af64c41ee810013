import { readFileSync } from 'node:fs';

/** Resident set size of a process, bytes (Linux /proc), or undefined when it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU time of a process, seconds (Linux /proc), or undefined when it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return undefined;
  }
}

export interface HubSample {
  at: number;
  rssBytes?: number;
  cpuSeconds?: number;
  /** p99 of the event-loop delay since the previous scrape (prom-client resets it per scrape), ms. */
  eventLoopP99Ms?: number;
  sessions?: number;
  /** outpost_hub_nodes{phase} (updated by the hub once a second). */
  nodePhases?: Record<string, number>;
}

/** Summary of a run's samples, as every report records it. */
export interface HubFigures {
  samples: number;
  rssMaxBytes: number | null;
  rssMaxMiB: number | null;
  rssLastMiB: number | null;
  /** Worst per-second p99 event-loop delay during the run, ms. */
  eventLoopP99MaxMs: number | null;
  /** Median over the run of the per-second p99 event-loop delay, ms. */
  eventLoopP99MedianMs: number | null;
  /** Mean hub CPU use during the run, in cores (1.0 = one core busy). */
  cpuCores: number | null;
}

/**
 * Samples the hub every second from outside: RSS and CPU from /proc, event-loop delay p99 and
 * sessions from its /metrics (nodejs_eventloop_lag_p99_seconds is reset at each scrape).
 */
export class HubMonitor {
  private readonly samples: HubSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private hub: { pid: number; url: string }, private readonly intervalMs = 1000) {}

  /** Follows a restarted hub. */
  setHub(hub: { pid: number; url: string }): void {
    this.hub = hub;
  }

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
  }

  stop(): HubFigures {
    clearInterval(this.timer);
    return summarize(this.samples);
  }

  /** Samples taken since `at` (epoch ms). */
  since(at: number): HubSample[] {
    return this.samples.filter((s) => s.at >= at);
  }

  latest(): HubSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const { pid, url } = this.hub;
    const s: HubSample = { at: Date.now() };
    const rss = rssOf(pid);
    const cpu = cpuSecondsOf(pid);
    if (rss !== undefined) s.rssBytes = rss;
    if (cpu !== undefined) s.cpuSeconds = cpu;
    try {
      const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      const lag = /^outpost_hub_nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? ([\d.e+-]+)$/m.exec(text);
      const sessions = /^outpost_hub_sessions(?:\{[^}]*\})? ([\d.e+-]+)$/m.exec(text);
      if (lag) s.eventLoopP99Ms = Number(lag[1]) * 1000;
      if (sessions) s.sessions = Number(sessions[1]);
      const phases: Record<string, number> = {};
      for (const m of text.matchAll(/^outpost_hub_nodes\{phase="(\w+)"\} ([\d.e+-]+)$/gm)) phases[m[1]!] = Number(m[2]);
      if (Object.keys(phases).length) s.nodePhases = phases;
    } catch {
      // hub down or too busy to answer within 5 s: RSS and CPU still count
    }
    this.samples.push(s);
    this.busy = false;
  }
}

export function summarize(samples: HubSample[]): HubFigures {
  const rss = samples.map((s) => s.rssBytes).filter((v): v is number => v !== undefined);
  const lag = samples.map((s) => s.eventLoopP99Ms).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  const cpu = samples.filter((s) => s.cpuSeconds !== undefined);
  let cpuCores: number | null = null;
  if (cpu.length >= 2) {
    // Sum the increases only: a restarted hub starts again from 0.
    let used = 0;
    for (let i = 1; i < cpu.length; i++) used += Math.max(0, cpu[i]!.cpuSeconds! - cpu[i - 1]!.cpuSeconds!);
    cpuCores = round2(used / ((cpu[cpu.length - 1]!.at - cpu[0]!.at) / 1000));
  }
  const mib = (b: number | undefined) => (b === undefined ? null : Math.round(b / 1048576));
  return {
    samples: samples.length,
    rssMaxBytes: rss.length ? Math.max(...rss) : null,
    rssMaxMiB: rss.length ? mib(Math.max(...rss)) : null,
    rssLastMiB: mib(rss[rss.length - 1]),
    eventLoopP99MaxMs: lag.length ? round2(lag[lag.length - 1]!) : null,
    eventLoopP99MedianMs: lag.length ? round2(lag[Math.floor(lag.length / 2)]!) : null,
    cpuCores,
  };
}

const round2 = (v: number) => Math.round(v * 100) / 100;

/** RSS and CPU of one process over a run, and per phase of it. */
export interface ProcessFigures {
  rssMaxMiB: number | null;
  rssLastMiB: number | null;
  /** Mean CPU use over the run, cores. */
  cpuCores: number | null;
  phases: Record<string, { seconds: number; cpuCores: number | null; rssMaxMiB: number | null }>;
}

interface ProcessSample { at: number; phase: string; rss: Record<string, number | undefined>; cpu: Record<string, number | undefined> }

/**
 * Samples RSS and CPU of named processes (hub replicas, kube-apiserver, etcd) from /proc once a
 * second; each sample belongs to the phase set last (a phase change takes a sample at the boundary).
 */
export class ProcessSampler {
  private readonly samples: ProcessSample[] = [];
  private phase = 'start';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pids: Record<string, number>, private readonly intervalMs = 1000) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  setPhase(phase: string): void {
    this.sample();
    this.phase = phase;
  }

  stop(): Record<string, ProcessFigures> {
    if (this.timer) this.sample();
    clearInterval(this.timer);
    this.timer = undefined;
    const out: Record<string, ProcessFigures> = {};
    for (const name of Object.keys(this.pids)) out[name] = this.figures(name);
    return out;
  }

  private sample(): void {
    const s: ProcessSample = { at: Date.now(), phase: this.phase, rss: {}, cpu: {} };
    for (const [name, pid] of Object.entries(this.pids)) {
      s.rss[name] = rssOf(pid);
      s.cpu[name] = cpuSecondsOf(pid);
    }
    this.samples.push(s);
  }

  private figures(name: string): ProcessFigures {
    const mib = (b: number | undefined) => (b === undefined ? null : Math.round(b / 1048576));
    const rssMax = (xs: ProcessSample[]) => {
      const v = xs.map((s) => s.rss[name]).filter((x): x is number => x !== undefined);
      return v.length ? mib(Math.max(...v)) : null;
    };
    const cores = (from: ProcessSample | undefined, to: ProcessSample | undefined) => {
      const a = from?.cpu[name];
      const b = to?.cpu[name];
      return a === undefined || b === undefined || to!.at <= from!.at ? null : round2((b - a) / ((to!.at - from!.at) / 1000));
    };
    const phases: ProcessFigures['phases'] = {};
    for (const phase of new Set(this.samples.map((s) => s.phase))) {
      const first = this.samples.findIndex((s) => s.phase === phase);
      const last = this.samples.findLastIndex((s) => s.phase === phase);
      // The phase starts at the boundary sample taken as the previous phase ended.
      const from = this.samples[Math.max(0, first - 1)];
      const to = this.samples[last];
      if (!from || !to || to.at - from.at < 100) continue; // no time spent in it (the phase before the first, the end)
      phases[phase] = { seconds: round2(((to?.at ?? 0) - (from?.at ?? 0)) / 1000), cpuCores: cores(from, to), rssMaxMiB: rssMax(this.samples.slice(first, last + 1)) };
    }
    return {
      rssMaxMiB: rssMax(this.samples),
      rssLastMiB: mib(this.samples[this.samples.length - 1]?.rss[name]),
      cpuCores: cores(this.samples[0], this.samples[this.samples.length - 1]),
      phases,
    };
  }
}
