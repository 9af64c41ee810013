// A private, real Podman for container tests: its own containers.conf (runc, explicit ulimits:
// crun fails on these machines, see platform-notes), its own storage root, its Docker-compatible
// API service on a socket in a temp dir, and tiny images made from busybox-static (no registry is
// reachable here). Everything lives under one temp dir and goes away with `stop()`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

/** The test image (busybox applets, CMD sh) and a second image for updates (ENV OUTPOST_TEST_VERSION=2). */
export const TEST_IMAGE = 'localhost/outpost-test:1';
export const TEST_IMAGE_2 = 'localhost/outpost-test:2';

export interface Podman {
  dir: string;
  /** The Docker Engine API socket (`podman system service`). */
  socket: string;
  /** Runs the podman CLI against the same storage; throws with its stderr on failure. */
  cli(args: string[]): string;
  /** Container ids carrying `label` (`key=value`), running or not. */
  containers(label: string): string[];
  stop(): Promise<void>;
}

const BUSYBOX = '/bin/busybox';

/** A running private Podman, or the reason it cannot run here (the caller skips with it). */
export async function startPodman(): Promise<Podman | { skip: string }> {
  for (const tool of ['podman', 'runc', 'tar']) {
    if (!onPath(tool)) return { skip: `${tool} is not installed (apt-get install podman runc busybox-static)` };
  }
  if (!existsSync(BUSYBOX) || !isStatic(BUSYBOX)) return { skip: `${BUSYBOX} is missing or not statically linked (apt-get install busybox-static)` };
  const dir = mkdtempSync(join(tmpdir(), 'outpost-podman-'));
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, [
    '[containers]',
    'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]',
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    '',
  ].join('\n'));
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const global = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--tmpdir', join(dir, 'tmp')];
  const cli = (args: string[]): string => {
    const r = spawnSync('podman', [...global, ...args], { env, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`podman ${args.join(' ')}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
    return r.stdout;
  };
  let service: ChildProcess | undefined;
  const stop = async () => {
    try {
      cli(['rm', '--all', '--force', '--time', '0']);
    } catch {
      // the service may be gone already
    }
    if (service && service.exitCode === null && service.signalCode === null) {
      const exited = new Promise((r) => service?.once('exit', r));
      service.kill('SIGTERM');
      const killer = setTimeout(() => service?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    killLeftovers(dir);
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    const rootfs = join(dir, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'www']) mkdirSync(join(rootfs, d));
    copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
    chmodSync(join(rootfs, 'bin/busybox'), 0o755);
    const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
    writeFileSync(join(rootfs, 'www/index.html'), 'outpost test image\n');
    const tar = join(dir, 'rootfs.tar');
    const t = spawnSync('tar', ['-C', rootfs, '-cf', tar, '.'], { encoding: 'utf8' });
    if (t.status !== 0) throw new Error(`tar: ${t.stderr}`);
    cli(['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin', tar, TEST_IMAGE]);
    cli(['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin', '--change', 'ENV OUTPOST_TEST_VERSION=2', tar, TEST_IMAGE_2]);
    // runc, cgroups and the network must all work: one throwaway container says so.
    cli(['run', '--rm', TEST_IMAGE, 'true']);
    const socket = join(dir, 'podman.sock');
    service = spawn('podman', [...global, 'system', 'service', '--time=0', `unix://${socket}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let serviceErr = '';
    service.stderr?.on('data', (d: Buffer) => { serviceErr = (serviceErr + d.toString()).slice(-4000); });
    await waitFor(() => ping(socket), { timeoutMs: 20_000, intervalMs: 100, message: `podman system service on ${socket}: ${serviceErr}` });
    const containers = (label: string) => cli(['ps', '--all', '--quiet', '--no-trunc', '--filter', `label=${label}`]).split('\n').filter(Boolean);
    return { dir, socket, cli, containers, stop };
  } catch (err) {
    await stop();
    return { skip: `podman cannot run containers here: ${err instanceof Error ? err.message : String(err)}`.slice(0, 2000) };
  }
}

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).status === 0;
}

/** ldd says so for a static binary; a dynamic busybox would not run in an empty root filesystem. */
function isStatic(file: string): boolean {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  return /not a dynamic executable|statically linked/.test(`${r.stdout}${r.stderr}`);
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * Podman's conmon monitors of exec sessions (probes, test execs) linger for minutes after the
 * command ends (--exit-delay 300). Ours name the private root in their argv: killed by pid.
 */
function killLeftovers(dir: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(`${dir}/`)) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}

/** Overlay and shm mounts Podman may leave under its root, deepest first, so the dir can be removed. */
function unmountUnder(dir: string): void {
  let mounts: string[];
  try {
    mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(`${dir}/`));
  } catch {
    return;
  }
  for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
}
