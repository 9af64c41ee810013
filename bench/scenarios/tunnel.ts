// Tunnel (issue 8): `outpost port-forward` throughput and added latency against a direct loopback
// TCP connection to the same server in the same run. A real hub and agent (child processes), a
// TCP server instance on the edge node (sends N bytes on "N\n"; echoes after "echo\n"), and the
// CLI's port-forward process, as a user runs them. Target: one stream >= 50% of direct throughput.
// The relay floor: the same download through three plain Node TCP relay processes in a chain (each
// `c.pipe(u); u.pipe(c)`, no WebSocket, no multiplexing), one per Node process of the tunnel (CLI,
// hub, agent): what any design with three Node hops can reach on this machine.
// Options: --bytes B (536870912) --round-trips K (1000) --runs R (3) --results DIR --cpu-prof DIR
// (the hub, agent and port-forward CLI write V8 CPU profiles there when they stop)
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { EdgeNode, Instance } from '../../shared/api/index.js';
import { freePort } from '../../shared/free-port.js';
import { TestCluster, repoRoot } from '../../test/helpers/cluster.js';
import { finish, numberFlag, percentile, stringFlag, until } from '../harness/report.js';

const API = '/apis/outpost.dev/v1alpha1';

const server = `require('net').createServer((s) => {
  s.setNoDelay(true); s.on('error', () => {});
  let head = '';
  s.on('data', function first(d) {
    head += d; const nl = head.indexOf('\\n'); if (nl < 0) return; s.off('data', first);
    const cmd = head.slice(0, nl);
    if (cmd === 'echo') { const rest = head.slice(nl + 1); if (rest) s.write(rest); s.pipe(s); return; }
    let left = Number(cmd); const chunk = Buffer.alloc(256 * 1024, 120);
    const more = () => { while (left > 0) { const n = Math.min(left, chunk.length); left -= n; if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', more); } s.end(); };
    more();
  });
}).listen(+process.argv[1], '127.0.0.1')`;

/** A plain TCP relay: listens on argv[1], forwards each connection to 127.0.0.1:argv[2]. */
const relay = `const net = require('net');
net.createServer({ allowHalfOpen: true }, (c) => {
  c.setNoDelay(true);
  const u = net.connect({ host: '127.0.0.1', port: +process.argv[2], allowHalfOpen: true });
  u.setNoDelay(true);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.pipe(u); u.pipe(c);
}).listen(+process.argv[1], '127.0.0.1', () => process.stdout.write('listening\\n'))`;

/**
 * A lean TCP relay: the downstream socket reads into 1 MiB slabs (net's onread: one syscall per
 * up to 1 MiB, no Buffer per read) and each slab is reused once its writes completed (no
 * ArrayBuffer allocation per byte). The best a Node relay process does here, as far as we know.
 */
const leanRelay = `const net = require('net');
net.createServer({ allowHalfOpen: true }, (c) => {
  c.setNoDelay(true);
  const free = []; let slab = { buf: Buffer.allocUnsafeSlow(1 << 20), refs: 1 }; let at = 0;
  const unref = (s) => { if (--s.refs === 0 && free.length < 8) free.push(s); };
  const u = net.connect({ host: '127.0.0.1', port: +process.argv[2], allowHalfOpen: true, onread: {
    buffer: () => { if (slab.buf.length - at < 65536) { const old = slab; slab = free.pop() || { buf: Buffer.allocUnsafeSlow(1 << 20), refs: 0 }; slab.refs = 1; at = 0; unref(old); } return slab.buf.subarray(at); },
    callback: (n) => { const s = slab; const piece = s.buf.subarray(at, at + n); at += n; s.refs++; return c.write(piece, () => unref(s)); },
  } });
  u.setNoDelay(true);
  c.on('drain', () => u.resume());
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  u.on('end', () => c.end());
  c.pipe(u);
}).listen(+process.argv[1], '127.0.0.1', () => process.stdout.write('listening\\n'))`;

/** Starts `hops` relay processes in a chain to `target`; resolves the first one's port. */
async function startRelayChain(hops: number, target: number, children: ReturnType<typeof spawn>[], script = relay): Promise<number> {
  let next = target;
  for (let i = 0; i < hops; i++) {
    const port = await freePort();
    const child = spawn(process.execPath, ['-e', script, String(port), String(next)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`relay process exited with ${code}`)));
    });
    next = port;
  }
  return next;
}

/** CPU time (user + system) of processes so far, ms, from /proc (Linux); 0 where unreadable. */
function cpuMs(pids: (number | undefined)[]): number {
  return pids.reduce<number>((sum, pid) => { const t = userSysMs(pid); return sum + t.user + t.sys; }, 0);
}

/** User and system CPU time of one process so far, ms. */
function userSysMs(pid: number | undefined): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
  } catch {
    return { user: 0, sys: 0 }; // not Linux, or gone
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setNoDelay(true);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Bytes per second of one download of `bytes` through `port`. */
async function download(port: number, bytes: number): Promise<number> {
  const s = await open(port);
  const started = performance.now();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => { got += d.length; });
    s.once('end', () => resolve());
    s.once('error', reject);
    s.write(`${bytes}\n`);
  });
  const seconds = (performance.now() - started) / 1000;
  s.destroy();
  if (got !== bytes) throw new Error(`download through port ${port}: got ${got} of ${bytes} bytes`);
  return bytes / seconds;
}

/** Round-trip times (ms) of `k` 16-byte messages echoed through `port`, one at a time. */
async function roundTrips(port: number, k: number): Promise<number[]> {
  const s = await open(port);
  s.write('echo\n');
  const msg = Buffer.alloc(16, 97);
  const times: number[] = [];
  let pending: (() => void) | undefined;
  let buffered = 0;
  s.on('data', (d: Buffer) => {
    buffered += d.length;
    if (buffered >= msg.length && pending) {
      buffered -= msg.length;
      const p = pending;
      pending = undefined;
      p();
    }
  });
  for (let i = 0; i < k; i++) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`echo through port ${port} timed out`)), 10_000);
      pending = () => { clearTimeout(timer); resolve(); };
      s.write(msg);
    });
    times.push(performance.now() - started);
  }
  s.destroy();
  return times;
}

export async function tunnel(args: string[]): Promise<void> {
  const bytes = numberFlag(args, 'bytes', 512 * 1024 * 1024);
  const k = numberFlag(args, 'round-trips', 1000);
  const runs = numberFlag(args, 'runs', 3);
  const resultsDir = stringFlag(args, 'results');
  const profDir = stringFlag(args, 'cpu-prof');
  if (profDir) process.env.OUTPOST_BENCH_CPU_PROF_DIR = profDir;
  const cluster = new TestCluster();
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  let forward: ReturnType<typeof spawn> | undefined;
  let agent: Awaited<ReturnType<TestCluster['startAgent']>> | undefined;
  const relays: ReturnType<typeof spawn>[] = [];
  try {
    const port = await freePort();
    await cluster.startHub();
    const applied = cluster.cli(['apply', '-f', '-'], `apiVersion: outpost.dev/v1alpha1
kind: NodeUnit
metadata: {name: bench}
---
apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: sender}
spec:
  units: {names: [bench]}
  template:
    processes:
      - command: ${JSON.stringify(process.execPath)}
        args: ["-e", ${JSON.stringify(server)}, "${port}"]
    terminationGracePeriodSeconds: 1
`);
    if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr}`);
    agent = await cluster.startAgent('bench-1', 'bench', ['--stop-instances-on-exit']);
    await until(async () => ((await cluster.api<Instance>('GET', `${API}/instances/sender-bench-0`)).status?.phase === 'Running' ? true : undefined), 60_000, 'sender running');
    // The server listens shortly after its process starts.
    await until(async () => (await open(port).then((s) => { s.destroy(); return true; }, () => undefined)), 20_000, 'server listening', 100);

    const profArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
    forward = spawn(process.execPath, [...profArgs, join(repoRoot, 'bin/outpost.js'), 'port-forward', 'sender', `0:${port}`], {
      env: { ...process.env, OUTPOST_HUB_DATA: cluster.hubDir, OUTPOST_SERVER: '', OUTPOST_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    forward.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    forward.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    const local = Number(await until(async () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1], 30_000, 'port-forward listening', 100));

    const floorPort = await startRelayChain(3, port, relays);
    const leanRelays: ReturnType<typeof spawn>[] = [];
    const leanPort = await startRelayChain(3, port, leanRelays, leanRelay);
    relays.push(...leanRelays);

    log(`warm-up (64 MiB each path), then ${bytes} bytes direct, through 3 plain relays, 3 lean relays and the tunnel, ${runs} times, alternating`);
    await download(port, 64 * 1024 * 1024);
    await download(floorPort, 64 * 1024 * 1024);
    await download(leanPort, 64 * 1024 * 1024);
    await download(local, 64 * 1024 * 1024);
    const direct: number[] = [];
    const floor: number[] = [];
    const lean: number[] = [];
    const tunneled: number[] = [];
    const loads: number[] = [];
    // CPU spent by the hops (the three relays; the CLI, hub and agent) per MiB: unlike MB/s it
    // hardly depends on how busy the machine is, so it compares changes on a loaded machine.
    const relayPids = relays.filter((c) => !leanRelays.includes(c)).map((c) => c.pid);
    const tunnelPids = [forward.pid, cluster.hub?.child.pid, agent.child.pid];
    const floorCpu: number[] = [];
    const tunnelCpu: number[] = [];
    const hopCpu: { cli: number; hub: number; agent: number }[] = [];
    const hopSplit: Record<'cli' | 'hub' | 'agent', { user: number; sys: number }>[] = [];
    const mib = bytes / (1024 * 1024);
    for (let r = 0; r < runs; r++) {
      loads.push(Math.round(loadavg()[0]! * 100) / 100);
      direct.push(await download(port, bytes));
      const cpu = cpuMs(relayPids);
      floor.push(await download(floorPort, bytes));
      floorCpu.push(Math.round(((cpuMs(relayPids) - cpu) / mib) * 100) / 100);
      lean.push(await download(leanPort, bytes));
      const each = tunnelPids.map((pid) => userSysMs(pid));
      tunneled.push(await download(local, bytes));
      const perMiB = (v: number) => Math.round((v / mib) * 100) / 100;
      const split = tunnelPids.map((pid, i) => {
        const now = userSysMs(pid);
        return { user: perMiB(now.user - each[i]!.user), sys: perMiB(now.sys - each[i]!.sys) };
      });
      const used = split.map((u) => Math.round((u.user + u.sys) * 100) / 100);
      hopCpu.push({ cli: used[0]!, hub: used[1]!, agent: used[2]! });
      hopSplit.push({ cli: split[0]!, hub: split[1]!, agent: split[2]! });
      tunnelCpu.push(Math.round(used.reduce((a, b) => a + b, 0) * 100) / 100);
      const us = (u: { user: number; sys: number }) => `${u.user}+${u.sys}`;
      log(`run ${r + 1} (load ${loads[r]}): direct ${(direct[r]! / 1e6).toFixed(0)} MB/s, 3 plain relays ${(floor[r]! / 1e6).toFixed(0)} MB/s (${floorCpu[r]} CPU ms/MiB), 3 lean relays ${(lean[r]! / 1e6).toFixed(0)} MB/s, tunnel ${(tunneled[r]! / 1e6).toFixed(0)} MB/s (${tunnelCpu[r]} CPU ms/MiB, user+system: CLI ${us(split[0]!)}, hub ${us(split[1]!)}, agent ${us(split[2]!)})`);
    }
    log(`${k} round trips of 16 bytes, direct and through the tunnel`);
    const rttDirect = await roundTrips(port, k);
    const rttTunnel = await roundTrips(local, k);
    const node = await cluster.api<EdgeNode>('GET', `${API}/edgenodes/bench-1`);

    const best = (v: number[]) => Math.max(...v);
    const directMBs = best(direct) / 1e6;
    const tunnelMBs = best(tunneled) / 1e6;
    const floorMBs = best(floor) / 1e6;
    const leanMBs = best(lean) / 1e6;
    const ratio = tunnelMBs / directMBs;
    const vsFloor = tunnelMBs / floorMBs;
    const p = (v: number[], q: number) => Math.round(percentile(v, q) * 1000) / 1000;
    const addedP50 = p(rttTunnel, 50) - p(rttDirect, 50);
    const round = (v: number) => Math.round(v * 10) / 10;
    finish({
      scenario: 'tunnel',
      inputs: { bytes, roundTrips: k, runs, path: 'client -> outpost port-forward (CLI) -> hub -> agent WebSocket -> agent -> TCP server (all on loopback)', floorPath: 'client -> 3 plain Node TCP relay processes (pipe both ways) -> TCP server (all on loopback)' },
      figures: {
        directMBps: direct.map((v) => round(v / 1e6)),
        relayFloorMBps: floor.map((v) => round(v / 1e6)),
        leanRelayMBps: lean.map((v) => round(v / 1e6)),
        tunnelMBps: tunneled.map((v) => round(v / 1e6)),
        loadAverage1mPerRun: loads,
        hopCpuMsPerMiB: { relayFloor: floorCpu, tunnel: tunnelCpu, tunnelByProcess: hopCpu, tunnelByProcessUserSystem: hopSplit },
        throughputRatio: Math.round(ratio * 1000) / 1000,
        throughputRatioPerRun: tunneled.map((t, i) => Math.round((t / direct[i]!) * 1000) / 1000),
        relayFloorRatio: Math.round((floorMBs / directMBs) * 1000) / 1000,
        leanRelayRatio: Math.round((leanMBs / directMBs) * 1000) / 1000,
        tunnelVsLeanRelays: Math.round((tunnelMBs / leanMBs) * 1000) / 1000,
        tunnelVsFloor: Math.round(vsFloor * 1000) / 1000,
        rttDirectMs: { p50: p(rttDirect, 50), p99: p(rttDirect, 99) },
        rttTunnelMs: { p50: p(rttTunnel, 50), p99: p(rttTunnel, 99) },
        addedLatencyP50Ms: Math.round(addedP50 * 1000) / 1000,
        roundTripsMeasured: rttTunnel.length,
      },
      checks: { everyByteArrived: true, nodeStayedReady: node.status?.phase === 'Ready' },
      targets: { throughputRatio: { value: Math.round(ratio * 1000) / 1000, target: '>= 0.5 of direct loopback TCP, one stream', met: ratio >= 0.5 } },
      notes: [
        `best of ${runs} runs each; direct, relay floors and tunnel alternate so that machine load hits all of them; throughputRatioPerRun divides each run's tunnel by the direct download just before it (direct alone swings ~1 000-3 500 MB/s on this VM)`,
        'the tunnel adds three hops on this one machine (CLI, hub, agent), each a separate Node process sharing the same cores',
        'relay floor: the same download through three plain Node TCP relay processes (c.pipe(u); u.pipe(c), no WebSocket, no multiplexing, no flow control of ours), one per Node process of the tunnel; it is what any design with three Node hops can reach here, so relayFloorRatio bounds throughputRatio on this machine and tunnelVsFloor is the share of that bound the tunnel reaches (protocol, framing and copies cost the rest). throughputRatio stays the figure judged against the 0.5 target',
        'lean relays: three relay processes that read into reused 1 MiB slabs (net onread: no Buffer per read, no allocation per byte): the best three-hop Node chain we know here; leanRelayRatio is the ratio a tunnel as cheap as a bare relay would reach',
        'hopCpuMsPerMiB: CPU time (user + system, /proc) of the three relay processes, and of the CLI, hub and agent, per MiB downloaded: the path is CPU-bound on 2 cores, and this figure moves far less with the machine load than MB/s does',
        'the target figures are meant for a quiet 2-core machine: loadAverageAtStart shows how busy this one was',
      ],
      headline: `tunnel: port-forward ${round(tunnelMBs)} MB/s vs direct ${round(directMBs)} MB/s (ratio ${ratio.toFixed(2)}, target >= 0.5 ${ratio >= 0.5 ? 'met' : 'missed'}); 3 plain relays ${round(floorMBs)} MB/s (floor ratio ${(floorMBs / directMBs).toFixed(2)}, tunnel ${vsFloor.toFixed(2)} of it), 3 lean relays ${round(leanMBs)} MB/s (ratio ${(leanMBs / directMBs).toFixed(2)}); added latency p50 ${addedP50.toFixed(3)} ms per round trip`,
    }, resultsDir, []);
  } finally {
    if (profDir) {
      // A profile is written only at a normal exit: SIGTERM, not SIGKILL.
      const exited = forward && forward.exitCode === null ? new Promise((r) => forward?.once('exit', r)) : undefined;
      forward?.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      await agent?.stop();
      await cluster.hub?.stop();
    }
    forward?.kill('SIGKILL');
    for (const r of relays) r.kill('SIGKILL');
    await cluster.cleanup();
  }
}
