import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fleet } from '../fleet/fleet.js';
import type { FleetNode } from '../fleet/protocol.js';
import { HubProcess } from './hub-process.js';
import { distribution, until } from './report.js';

export const API = '/apis/outpost.dev/v1alpha1';

export interface FleetSetupOptions {
  nodes: number;
  /** Nodes per NodeUnit. Default 100. */
  unitSize?: number;
  /** More `outpost hub` flags. */
  hubArgs?: string[];
  cpuProfDir?: string;
  /** Agents per fleet process. Default 5000. */
  perProcess?: number;
  /** Deadline for joining and connecting everyone, ms. Default 15 min. */
  timeoutMs?: number;
  /** Called once the hub runs, before any unit or node exists (e.g. to start a monitor). */
  onHubStarted?(hub: HubProcess): void;
  /**
   * Starts the hub replicas instead of one SQLite hub (Kubernetes mode); `hubArgs` and
   * `cpuProfDir` are then the caller's. Agent i joins and dials replica i % n first and lists the
   * others after it (agent --hub lists).
   */
  startHubs?(dir: string): Promise<HubProcess[]>;
  /** Called as the setup enters a phase (e.g. to attribute sampled CPU to it). */
  onPhase?(phase: 'units' | 'join' | 'connect'): void;
  log(line: string): void;
}

export interface FleetSetup {
  dir: string;
  /** The first replica (the only hub unless `startHubs` started more). */
  hub: HubProcess;
  hubs: HubProcess[];
  fleet: Fleet;
  units: string[];
  nodes: FleetNode[];
  figures: { joinSeconds: number; joinsPerSecond: number; joinMs: ReturnType<typeof distribution>; connectSeconds: number; fleetProcesses: number };
  /** Kills the fleet and the hub and removes the temp dir. */
  cleanup(): Promise<void>;
}

export const unitName = (i: number) => `bench-${String(i).padStart(4, '0')}`;

/** Creates `count` units named bench-0000... with one join token each (uses = unit size). */
export async function createUnits(hub: HubProcess, count: number, unitSize: number, offset = 0): Promise<{ units: string[]; tokens: Map<string, string> }> {
  const units = Array.from({ length: count }, (_, i) => unitName(i + offset));
  const tokens = new Map<string, string>();
  for (const u of units) {
    await hub.api('POST', `${API}/nodeunits`, { apiVersion: 'outpost.dev/v1alpha1', kind: 'NodeUnit', metadata: { name: u, labels: { bench: 'yes' } }, spec: {} });
    const t = await hub.api<{ token: string }>('POST', `${API}/jointokens`, { unit: u, uses: unitSize, ttl: '24h', description: 'bench fleet' });
    tokens.set(u, t.token);
  }
  return { units, tokens };
}

/**
 * A hub process with `nodes` joined and connected simulated agents in units of `unitSize`:
 * units and tokens through the API, joins through the agent's join code, agents dialled all at
 * once (the hub's admission queue paces them). Resolves when every agent has its first resync.
 */
export async function setupFleet(options: FleetSetupOptions): Promise<FleetSetup> {
  const unitSize = options.unitSize ?? 100;
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-'));
  let hubs: HubProcess[] = [];
  let fleet: Fleet | undefined;
  const cleanup = async () => {
    fleet?.kill();
    await Promise.all(hubs.map((h) => h.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    hubs = options.startHubs
      ? await options.startHubs(dir)
      : [await HubProcess.start({ dataDir: join(dir, 'hub'), args: options.hubArgs ?? [], ...(options.cpuProfDir ? { cpuProfDir: options.cpuProfDir } : {}) })];
    const hub = hubs[0]!;
    options.onHubStarted?.(hub);
    options.onPhase?.('units');
    const unitCount = Math.ceil(options.nodes / unitSize);
    const { units, tokens } = await createUnits(hub, unitCount, unitSize);
    // With several replicas, agent i lists replica i % n first and the others after it.
    const hubList = (i: number) => hubs.map((_, k) => hubs[(i + k) % hubs.length]!.url).join(',');
    const nodes: FleetNode[] = Array.from({ length: options.nodes }, (_, i) => {
      const unit = units[Math.floor(i / unitSize)]!;
      return { name: `${unit}-n${String(i % unitSize).padStart(3, '0')}`, token: tokens.get(unit)!, ...(hubs.length > 1 ? { hubUrl: hubList(i) } : {}) };
    });
    fleet = await Fleet.spawn(options.nodes, options.perProcess === undefined ? {} : { perProcess: options.perProcess });
    options.log(`hub ${hubs.map((h) => `${h.url} (pid ${h.pid})`).join(', ')}; ${units.length} units; ${fleet.processes} fleet processes; joining ${options.nodes} nodes...`);
    options.onPhase?.('join');
    const joinStarted = performance.now();
    // Kubernetes mode: a join consumes a use of its unit's token Secret with a resourceVersion
    // precondition, so joins are interleaved over the units (16 in flight on one token would race).
    const joinOrder = options.startHubs ? nodes.map((n, i) => [n, i] as const).sort(([, a], [, b]) => (a % unitSize) - (b % unitSize) || a - b).map(([n]) => n) : nodes;
    const joined = await fleet.join(hub.url, joinOrder, 16, timeoutMs);
    const joinSeconds = (performance.now() - joinStarted) / 1000;
    if (joined.failures.length) throw new Error(`${joined.failures.length} joins failed, e.g. ${joined.failures[0]?.name}: ${joined.failures[0]?.error}`);
    for (const n of nodes) n.credential = joined.credentials[n.name]!;
    options.log(`joined ${nodes.length} nodes in ${joinSeconds.toFixed(1)} s; connecting...`);
    options.onPhase?.('connect');
    const connectStarted = performance.now();
    await fleet.mark();
    await fleet.start(hub.url, nodes, 0, timeoutMs);
    const f = fleet;
    await until(async () => {
      const s = await f.stats();
      return s.connected === nodes.length && s.resynced >= nodes.length ? s : undefined;
    }, timeoutMs, 'every agent connected and resynced', 1000);
    const connectSeconds = (performance.now() - connectStarted) / 1000;
    options.log(`all ${nodes.length} agents connected and synced in ${connectSeconds.toFixed(1)} s`);
    return {
      dir, hub, hubs, fleet, units, nodes, cleanup,
      figures: {
        joinSeconds: round1(joinSeconds), joinsPerSecond: Math.round(nodes.length / joinSeconds), joinMs: distribution(joined.joinMs),
        connectSeconds: round1(connectSeconds), fleetProcesses: fleet.processes,
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;
