// The container runtime against a real Podman (its Docker-compatible API service), with images
// made locally from busybox-static. Skips, saying why, where Podman cannot run.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { AppTemplate, ContainerSpec, EdgeNode, Instance, InstanceStatus } from '../../shared/api/index.js';
import { shortHash } from '../../shared/hash.js';
import { silentLogger } from '../../shared/logger.js';
import { ContainerRuntime } from '../../edge-agent/runtime/container/container-runtime.js';
import { containerCreateBody } from '../../edge-agent/runtime/container/container-config.js';
import { DockerEngine } from '../../edge-agent/runtime/container/docker-engine.js';
import { chooseEngineSocket } from '../../edge-agent/runtime/container/engine-socket.js';
import { splitImageRef } from '../../edge-agent/runtime/container/image-ref.js';
import { parseCpu, parseMemory } from '../../edge-agent/runtime/container/quantities.js';
import { StreamDemux } from '../../edge-agent/runtime/container/stream-demux.js';
import type { RuntimeEvent } from '../../edge-agent/runtime/types.js';
import type { DesiredContainer } from '../../edge-agent/runtime/workload-runtime.js';
import { TestCluster } from '../helpers/cluster.js';
import { startPodman, TEST_IMAGE, TEST_IMAGE_2, type Podman } from '../helpers/podman.js';
import { waitFor } from '../helpers/wait.js';
import { freePort } from '../../shared/free-port.js';

const API = '/apis/outpost.dev/v1alpha1';

function desired(name: string, container: ContainerSpec, extra: Omit<AppTemplate, 'containers'> = {}, configs: Partial<Pick<DesiredContainer, 'configEnv' | 'configDirs'>> = {}): DesiredContainer {
  const template: AppTemplate = { containers: [container], terminationGracePeriodSeconds: 1, ...extra };
  return { name, template, templateHash: shortHash(template), configEnv: configs.configEnv ?? {}, configDirs: configs.configDirs ?? {} };
}

/** A ContainerRuntime as the agent builds it, over its own SQLite file, recording what it reports. */
class Harness {
  readonly events: RuntimeEvent[] = [];
  readonly runtime: ContainerRuntime;
  readonly engine: DockerEngine;
  private readonly db: Database.Database;

  constructor(podman: Podman, readonly dataDir: string, readonly node: string) {
    mkdirSync(dataDir, { recursive: true });
    this.db = new Database(join(dataDir, 'runtime.db'));
    this.engine = new DockerEngine(podman.socket);
    this.runtime = new ContainerRuntime(
      { engine: this.engine, db: this.db, log: silentLogger() },
      { node, logDir: join(dataDir, 'logs'), baseEnv: { OUTPOST_NODE: node, OUTPOST_UNIT: 'site-a' }, pollIntervalMs: 250, restartBackoff: { initialMs: 200, maxMs: 2000 } },
    );
    this.runtime.onEvent((e) => this.events.push(e));
  }

  status(name: string): InstanceStatus | undefined {
    return this.runtime.statuses().get(name);
  }

  reasons(name: string): string[] {
    return this.events.filter((e) => e.instance === name).map((e) => e.reason);
  }

  waitStatus(name: string, ok: (s: InstanceStatus) => boolean, message: string, timeoutMs = 20_000): Promise<InstanceStatus> {
    return waitFor(() => {
      const s = this.status(name);
      return s && ok(s) ? s : undefined;
    }, { timeoutMs, message: `${message}; status ${JSON.stringify(this.status(name))}, events ${JSON.stringify(this.events.filter((e) => e.instance === name).map((e) => `${e.reason}: ${e.message}`))}` });
  }

  /** Removes every container of this harness's node, then lets go (the db stays for a successor). */
  async close(options: { removeAll: boolean }): Promise<void> {
    if (options.removeAll) await this.runtime.stopAllInstances();
    await this.runtime.stop();
    this.db.close();
  }
}

const running = (s: InstanceStatus) => s.phase === 'Running' && s.containerId !== undefined;

describe('container runtime pieces (no engine needed)', () => {
  test('resource quantities become the engine\'s units; bad ones are named', () => {
    assert.equal(parseCpu('250m'), 250_000_000);
    assert.equal(parseCpu('0.5'), 500_000_000);
    assert.equal(parseCpu('2'), 2_000_000_000);
    assert.equal(parseMemory('64Mi'), 67_108_864);
    assert.equal(parseMemory('1G'), 1_000_000_000);
    assert.equal(parseMemory('4096'), 4096);
    assert.throws(() => parseCpu('1.5cores'), /cpu "1.5cores"/);
    assert.throws(() => parseMemory('64MB'), /memory "64MB"/);
  });

  test('image references split into repository and tag (a registry port is no tag)', () => {
    assert.deepEqual(splitImageRef('registry:5000/app'), { fromImage: 'registry:5000/app', tag: 'latest' });
    assert.deepEqual(splitImageRef('registry:5000/app:1.2'), { fromImage: 'registry:5000/app', tag: '1.2' });
    assert.deepEqual(splitImageRef('busybox'), { fromImage: 'busybox', tag: 'latest' });
    assert.deepEqual(splitImageRef('app@sha256:abc'), { fromImage: 'app', tag: 'sha256:abc' });
  });

  test('the multiplexed output stream is split whatever the chunking', () => {
    const frame = (type: number, text: string) => Buffer.concat([Buffer.from([type, 0, 0, 0]), Buffer.from(new Uint32Array([0]).buffer), Buffer.from(text)]);
    const withLength = (b: Buffer, n: number) => { b.writeUInt32BE(n, 4); return b; };
    const all = Buffer.concat([withLength(frame(1, 'out\n'), 4), withLength(frame(2, 'err!\n'), 5)]);
    const got: string[] = [];
    const demux = new StreamDemux((stream, payload) => got.push(`${stream}:${payload.toString()}`));
    for (let i = 0; i < all.length; i += 3) demux.push(all.subarray(i, i + 3));
    assert.deepEqual(got, ['stdout:out\n', 'stderr:err!\n']);
  });

  test('the engine socket: a given path, none, or the first default that exists; a clear reason otherwise', () => {
    const missing = join(tmpdir(), 'outpost-no-such.sock');
    const given = chooseEngineSocket(missing);
    assert.equal(given.socket, null);
    assert.match(given.socket === null ? given.reason : '', /no Docker or Podman socket at .*outpost-no-such\.sock/);
    assert.deepEqual(chooseEngineSocket('none').socket, null);
    const probed = chooseEngineSocket(undefined, [missing]);
    assert.match(probed.socket === null ? probed.reason : '', /looked at .*outpost-no-such\.sock.*--container-socket/);
  });

  test('the create body carries labels, env in order, mounts, ports, devices and limits', () => {
    const d = desired('web-0', {
      image: 'app:1', args: ['--serve'], env: { A: 'template' },
      configMounts: [{ config: 'site' }], ports: [{ containerPort: 80, hostPort: 8080, protocol: 'UDP' }],
      devices: [{ hostPath: '/dev/video0' }], resources: { limits: { cpu: '1', memory: '1Gi' } },
    }, {}, { configEnv: { A: 'config', B: 'config' }, configDirs: { site: '/var/lib/x/site' } });
    const body = containerCreateBody(d, { node: 'n1', baseEnv: { OUTPOST_NODE: 'n1', A: 'base' } });
    assert.deepEqual(body.Labels, { 'outpost.dev/node': 'n1', 'outpost.dev/instance': 'web-0', 'outpost.dev/template-hash': d.templateHash });
    assert.deepEqual(body.Env, ['OUTPOST_NODE=n1', 'A=template', 'OUTPOST_INSTANCE=web-0', 'B=config']);
    assert.equal(body.Entrypoint, undefined, 'no command: the image\'s entrypoint');
    assert.deepEqual(body.Cmd, ['--serve']);
    assert.deepEqual(body.HostConfig.Binds, ['/var/lib/x/site:/etc/outpost/site:ro']);
    assert.deepEqual(body.HostConfig.PortBindings, { '80/udp': [{ HostIp: '', HostPort: '8080' }] });
    assert.deepEqual(body.HostConfig.Devices, [{ PathOnHost: '/dev/video0', PathInContainer: '/dev/video0', CgroupPermissions: 'rwm' }]);
    assert.equal(body.HostConfig.NanoCpus, 1e9);
    assert.equal(body.HostConfig.Memory, 1024 ** 3);
    assert.deepEqual(body.HostConfig.RestartPolicy, { Name: 'no' }, 'the runtime restarts containers itself');
    const host = containerCreateBody(desired('h-0', { image: 'app:1', ports: [{ containerPort: 80, hostPort: 80 }] }, { hostNetwork: true }), { node: 'n1', baseEnv: {} });
    assert.equal(host.HostConfig.NetworkMode, 'host');
    assert.equal(host.HostConfig.PortBindings, undefined, 'no port mapping on the host network');
    assert.throws(() => containerCreateBody(desired('m-0', { image: 'a', configMounts: [{ config: 'gone' }] }), { node: 'n1', baseEnv: {} }), /config "gone" is not resolved/);
  });

  test('an engine that cannot be reached: desired containers wait as Pending, saying why', async () => {
    const data = mkdtempSync(join(tmpdir(), 'outpost-ctr-down-'));
    const socket = join(data, 'engine.sock');
    const runtime = new ContainerRuntime({ engine: new DockerEngine(socket), log: silentLogger() }, { node: 'n-down', logDir: join(data, 'logs'), pollIntervalMs: 100 });
    try {
      await runtime.start();
      runtime.reconcile([desired('down-0', { image: 'app:1' })]);
      const s = await waitFor(() => runtime.statuses().get('down-0'), { timeoutMs: 5000, message: 'a waiting status' });
      assert.equal(s.phase, 'Pending');
      assert.match(s.message ?? '', /waiting for the container engine at .*engine\.sock: .*ENOENT/);
    } finally {
      await runtime.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });
});

describe('container runtime on real Podman', { timeout: 170_000 }, () => {
  let podman: Podman | undefined;
  let skipReason = '';
  let dir = '';
  const measured: string[] = [];

  before(async () => {
    const p = await startPodman();
    if ('skip' in p) skipReason = p.skip;
    else podman = p;
    dir = mkdtempSync(join(tmpdir(), 'outpost-ctr-'));
  });

  after(async () => {
    await podman?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (measured.length > 0) console.log(`# container timings: ${measured.join('; ')}`);
  });

  /** The podman of this file, or a skip saying why there is none. */
  function need(t: TestContext): Podman | undefined {
    if (!podman) t.skip(skipReason);
    return podman;
  }

  test('starts a container with env, a read-only config mount, a published port, a device and limits; output lands in current.log', async (t) => {
    const pm = need(t);
    if (!pm) return;
    const h = new Harness(pm, join(dir, 'basic'), 'node-basic');
    await h.runtime.start();
    const web = join(dir, 'basic-web');
    mkdirSync(web);
    writeFileSync(join(web, 'index.html'), 'served from the config mount\n');
    const port = await freePort();
    const d = desired('basic-0', {
      image: TEST_IMAGE,
      command: ['sh', '-c', 'echo "started $OUTPOST_INSTANCE $GREETING"; exec httpd -f -p 8080 -h /etc/outpost/web'],
      env: { GREETING: 'hi', SHADOWED: 'template' },
      configMounts: [{ config: 'web' }, { config: 'web', path: '/srv/again' }],
      ports: [{ containerPort: 8080, hostPort: port, hostIP: '127.0.0.1' }],
      devices: [{ hostPath: '/dev/zero', containerPath: '/dev/camera0' }],
      resources: { limits: { cpu: '250m', memory: '64Mi' } },
      stopSignal: 'SIGKILL',
    }, {}, { configEnv: { FROM_CONFIG: 'cfg', SHADOWED: 'config' }, configDirs: { web } });
    const t0 = Date.now();
    h.runtime.reconcile([d]);
    const s = await h.waitStatus('basic-0', running, 'basic running');
    measured.push(`create+start to Running ${Date.now() - t0} ms`);
    assert.equal(s.ready, true, 'no readiness probe: ready while running');
    assert.equal(s.templateHash, d.templateHash);
    assert.ok(s.pid && s.pid > 0, 'the host pid of the container is reported');
    const id = s.containerId ?? '';

    const env = await h.engine.exec(id, ['sh', '-c', 'echo "$GREETING $FROM_CONFIG $SHADOWED $OUTPOST_NODE $OUTPOST_UNIT $OUTPOST_INSTANCE"'], 5000);
    assert.equal(env.output.trim(), 'hi cfg template node-basic site-a basic-0', 'template env over config env over the node\'s');
    assert.equal((await h.engine.exec(id, ['cat', '/srv/again/index.html'], 5000)).output, 'served from the config mount\n');
    const write = await h.engine.exec(id, ['sh', '-c', 'echo x > /etc/outpost/web/x'], 5000);
    assert.notEqual(write.exitCode, 0, 'the config mount is read-only');
    assert.equal((await h.engine.exec(id, ['test', '-c', '/dev/camera0'], 5000)).exitCode, 0, 'the device is mapped');
    const body = await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/index.html`)).text(), { timeoutMs: 10_000, message: 'published port answers' });
    assert.equal(body, 'served from the config mount\n');

    const inspect = JSON.parse(pm.cli(['inspect', id])) as Array<{ HostConfig: { NanoCpus: number; Memory: number }; Config: { Labels: Record<string, string> } }>;
    assert.equal(inspect[0]?.HostConfig.NanoCpus, 250_000_000);
    assert.equal(inspect[0]?.HostConfig.Memory, 64 * 1024 * 1024);
    assert.deepEqual(
      [inspect[0]?.Config.Labels['outpost.dev/node'], inspect[0]?.Config.Labels['outpost.dev/instance'], inspect[0]?.Config.Labels['outpost.dev/template-hash']],
      ['node-basic', 'basic-0', d.templateHash],
    );
    await waitFor(() => readFileSync(join(h.dataDir, 'logs/basic-0/current.log'), 'utf8').includes('started basic-0 hi'), { timeoutMs: 10_000, message: 'output in current.log' });
    const started = h.events.find((e) => e.reason === 'Started');
    assert.equal(started?.process?.edge, 'start');
    assert.equal(started?.process?.pid, s.pid);
    await h.close({ removeAll: true });
    assert.deepEqual(pm.containers('outpost.dev/node=node-basic'), []);
  });

  test('a readiness probe drives ready; a failing liveness probe restarts the container', async (t) => {
    const pm = need(t);
    if (!pm) return;
    const h = new Harness(pm, join(dir, 'probes'), 'node-probes');
    await h.runtime.start();
    const port = await freePort();
    const probe = { periodSeconds: 1, timeoutSeconds: 2, failureThreshold: 1 };
    h.runtime.reconcile([desired('probed-0', {
      image: TEST_IMAGE,
      command: ['sh', '-c', `rm -f /tmp/unhealthy; exec httpd -f -p 127.0.0.1:${port} -h /www`],
      readinessProbe: { httpGet: { path: '/ready', port }, ...probe },
      livenessProbe: { exec: { command: ['sh', '-c', 'test ! -e /tmp/unhealthy'] }, ...probe },
      stopSignal: 'SIGKILL',
    }, { hostNetwork: true })]);
    const notReady = await h.waitStatus('probed-0', (s) => running(s) && /readiness/.test(s.message ?? ''), 'running, not ready (no /ready yet)');
    assert.equal(notReady.ready, false);
    const id = notReady.containerId ?? '';
    await h.engine.exec(id, ['sh', '-c', 'echo ok > /www/ready'], 5000);
    const ready = await h.waitStatus('probed-0', (s) => s.ready, 'ready once /ready answers 200');
    assert.equal(ready.restarts, 0);

    await h.engine.exec(id, ['touch', '/tmp/unhealthy'], 5000);
    const restarted = await h.waitStatus('probed-0', (s) => running(s) && s.restarts === 1 && s.pid !== ready.pid, 'restarted after the liveness failure');
    assert.equal(restarted.containerId, id, 'the same container is restarted');
    assert.ok(h.events.some((e) => e.reason === 'Unhealthy' && /liveness/.test(e.message)), 'an Unhealthy event names the liveness probe');
    await h.waitStatus('probed-0', (s) => s.ready && s.restarts === 1, 'ready again after the restart');
    await h.close({ removeAll: true });
  });

  test('a timed-out exec probe leaves no process in the container; a log file that cannot be written drops output, nothing else', async (t) => {
    const pm = need(t);
    if (!pm) return;
    const h = new Harness(pm, join(dir, 'exec-timeout'), 'node-exec');
    mkdirSync(join(h.dataDir, 'logs', 'slow-0'), { recursive: true });
    symlinkSync('/dev/full', join(h.dataDir, 'logs', 'slow-0', 'current.log')); // a full disk: every write fails with ENOSPC
    await h.runtime.start();
    h.runtime.reconcile([desired('slow-0', {
      image: TEST_IMAGE,
      command: ['sh', '-c', 'while true; do echo tick; sleep 0.2; done'],
      livenessProbe: { exec: { command: ['sleep', '30'] }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1000 },
    })]);
    const s = await h.waitStatus('slow-0', running, 'running');
    const id = s.containerId ?? '';
    await waitFor(async () => {
      const ps = await h.engine.exec(id, ['ps', '-o', 'args'], 5000);
      return ps.output.split('\n').filter((l) => l.trim() === 'sleep 30').length === 1 && ps;
    }, { timeoutMs: 15_000, message: 'a probe command in flight' });
    await new Promise((r) => setTimeout(r, 4000)); // four more timed-out attempts
    const ps = await h.engine.exec(id, ['ps', '-o', 'args'], 5000);
    const sleeping = ps.output.split('\n').filter((l) => l.trim() === 'sleep 30').length;
    assert.ok(sleeping <= 1, `only the attempt in flight runs, not every timed-out one:\n${ps.output}`);
    const now = h.status('slow-0');
    assert.equal(now?.phase, 'Running', 'the agent copes with the full disk');
    assert.equal(now?.containerId, id);
    assert.equal(now?.restarts, 0);
    await h.close({ removeAll: true });
  });

  test('a template change replaces the container; removal removes it', async (t) => {
    const pm = need(t);
    if (!pm) return;
    const h = new Harness(pm, join(dir, 'update'), 'node-update');
    await h.runtime.start();
    const spec: ContainerSpec = { image: TEST_IMAGE, command: ['sleep', '3600'], stopSignal: 'SIGKILL' };
    const v1 = desired('upd-0', spec);
    h.runtime.reconcile([v1]);
    const first = await h.waitStatus('upd-0', running, 'v1 running');
    const v2 = desired('upd-0', { ...spec, image: TEST_IMAGE_2 });
    h.runtime.reconcile([v2]);
    const second = await h.waitStatus('upd-0', (s) => running(s) && s.templateHash === v2.templateHash, 'v2 running');
    assert.notEqual(second.containerId, first.containerId, 'a new container for the new template');
    assert.equal((await h.engine.exec(second.containerId ?? '', ['sh', '-c', 'echo $OUTPOST_TEST_VERSION'], 5000)).output.trim(), '2', 'it runs the new image');
    assert.deepEqual(pm.containers('outpost.dev/node=node-update'), [second.containerId], 'the old container is gone');
    assert.ok(h.reasons('upd-0').includes('Replaced'));

    h.runtime.reconcile([]);
    await waitFor(() => h.reasons('upd-0').includes('Removed'), { timeoutMs: 20_000, message: 'Removed event' });
    assert.deepEqual(pm.containers('outpost.dev/node=node-update'), []);
    assert.equal(h.status('upd-0'), undefined);
    await h.close({ removeAll: false });
  });

  test('a second runtime over the same engine adopts the running container: same id, no duplicate, no restart', async (t) => {
    const pm = need(t);
    if (!pm) return;
    const data = join(dir, 'adopt');
    const first = new Harness(pm, data, 'node-adopt');
    await first.runtime.start();
    const d = desired('adopt-0', { image: TEST_IMAGE, command: ['sh', '-c', 'while true; do echo tick; sleep 0.2; done'], stopSignal: 'SIGKILL' });
    first.runtime.reconcile([d]);
    const before = await first.waitStatus('adopt-0', running, 'running under the first runtime');
    await first.close({ removeAll: false });

    const second = new Harness(pm, data, 'node-adopt');
    const t0 = Date.now();
    await second.runtime.start();
    second.runtime.reconcile([d]);
    const adopted = await second.waitStatus('adopt-0', (s) => running(s) && s.ready, 'adopted and ready');
    measured.push(`adoption (start + reconcile to Running, ready) ${Date.now() - t0} ms`);
    assert.equal(adopted.containerId, before.containerId);
    assert.equal(adopted.pid, before.pid, 'the same process: not restarted');
    assert.equal(adopted.restarts, 0);
    assert.deepEqual(second.reasons('adopt-0'), ['Adopted']);
    assert.deepEqual(pm.containers('outpost.dev/node=node-adopt'), [before.containerId], 'no duplicate');
    const log = join(data, 'logs/adopt-0/current.log');
    const size = readFileSync(log, 'utf8').length;
    await waitFor(() => readFileSync(log, 'utf8').length > size, { timeoutMs: 5000, message: 'the adopted container\'s output is copied on' });
    await second.close({ removeAll: true });
  });

  test('a crash (the container\'s process killed) restarts it under Always, with Exited and Started events', async (t) => {
    const pm = need(t);
    if (!pm) return;
    const h = new Harness(pm, join(dir, 'crash'), 'node-crash');
    await h.runtime.start();
    h.runtime.reconcile([desired('crash-0', { image: TEST_IMAGE, command: ['sleep', '3600'], stopSignal: 'SIGKILL' }, { restartPolicy: 'Always' })]);
    const s = await h.waitStatus('crash-0', running, 'running');
    process.kill(s.pid ?? 0, 'SIGKILL');
    const again = await h.waitStatus('crash-0', (x) => running(x) && x.restarts === 1, 'restarted');
    assert.equal(again.containerId, s.containerId);
    assert.notEqual(again.pid, s.pid);
    const exited = h.events.find((e) => e.reason === 'Exited');
    assert.match(exited?.message ?? '', /exited with code 137 \(SIGKILL\)/);
    assert.deepEqual(exited?.process, { pid: s.pid, startedAt: s.startedAt, edge: 'end' });
    assert.equal(h.events.filter((e) => e.reason === 'Started').length, 2);
    await h.close({ removeAll: true });
  });

  test('an unreachable registry: a cached image starts (IfNotPresent, and Always with a warning); no image fails clearly', async (t) => {
    const pm = need(t);
    if (!pm) return;
    // Port 1 on loopback: a registry that refuses connections, as at a site without uplink.
    pm.cli(['tag', TEST_IMAGE, '127.0.0.1:1/outpost/cached:1']);
    const h = new Harness(pm, join(dir, 'pull'), 'node-pull');
    await h.runtime.start();
    const sleeper = (image: string, imagePullPolicy: ContainerSpec['imagePullPolicy']): ContainerSpec => ({ image, imagePullPolicy, command: ['sleep', '3600'], stopSignal: 'SIGKILL' });
    h.runtime.reconcile([
      desired('cached-0', sleeper('127.0.0.1:1/outpost/cached:1', 'IfNotPresent')),
      desired('always-0', sleeper('127.0.0.1:1/outpost/cached:1', 'Always')),
      desired('missing-0', sleeper('127.0.0.1:1/outpost/missing:1', 'IfNotPresent')),
      desired('never-0', sleeper('127.0.0.1:1/outpost/missing:1', 'Never')),
    ]);
    await h.waitStatus('cached-0', running, 'cached image started');
    assert.ok(!h.reasons('cached-0').includes('Pulling'), 'IfNotPresent asks no registry for a cached image');
    await h.waitStatus('always-0', running, 'Always falls back to the cached image');
    const warning = h.events.find((e) => e.instance === 'always-0' && e.reason === 'FailedPull');
    assert.equal(warning?.type, 'Warning');
    assert.match(warning?.message ?? '', /starting the cached copy/);
    const missing = await h.waitStatus('missing-0', (s) => s.phase === 'Failed', 'missing image Failed');
    assert.match(missing.message ?? '', /cannot pull image 127\.0\.0\.1:1\/outpost\/missing:1: .*no copy of it is cached on this node/);
    const never = await h.waitStatus('never-0', (s) => s.phase === 'Failed', 'Never without image Failed');
    assert.match(never.message ?? '', /not on this node, and imagePullPolicy is Never/);
    assert.ok(!h.reasons('never-0').includes('Pulling'));
    await h.close({ removeAll: true });
  });

  test('end to end: hub + agent run a container app, probe, update and remove it; an agent killed and restarted re-adopts it', async (t) => {
    const pm = need(t);
    if (!pm) return;
    const cluster = new TestCluster();
    process.env.OUTPOST_CONTAINER_SOCKET = pm.socket;
    t.after(async () => {
      await cluster.cleanup();
      delete process.env.OUTPOST_CONTAINER_SOCKET;
    });
    await cluster.startHub();
    assert.equal(cluster.cli(['apply', '-f', '-'], 'apiVersion: outpost.dev/v1alpha1\nkind: NodeUnit\nmetadata: {name: site-c}\nspec: {}\n').code, 0);
    const agent = await cluster.startAgent('edge-c1', 'site-c');
    await waitFor(async () => (await cluster.api<EdgeNode>('GET', `${API}/edgenodes/edge-c1`)).status?.phase === 'Ready', { timeoutMs: 20_000, message: 'edge-c1 Ready' });
    const port = await freePort();
    const appYaml = (greeting: string) => `apiVersion: outpost.dev/v1alpha1
kind: EdgeApp
metadata: {name: cam}
spec:
  units: {names: [site-c]}
  replicasPerUnit: 1
  template:
    hostNetwork: true
    terminationGracePeriodSeconds: 1
    containers:
      - image: ${TEST_IMAGE}
        command: [sh, -c, 'echo "$GREETING from $OUTPOST_NODE" > /www/greeting; exec httpd -f -p 127.0.0.1:${port} -h /www']
        env: {GREETING: ${greeting}}
        stopSignal: SIGKILL
        readinessProbe: {httpGet: {path: /greeting, port: ${port}}, periodSeconds: 1}
`;
    const instance = () => cluster.api<Instance>('GET', `${API}/instances/cam-site-c-0`);
    assert.equal(cluster.cli(['apply', '-f', '-'], appYaml('hello')).code, 0);
    const first = await waitFor(async () => {
      const i = await instance();
      return i.status?.phase === 'Running' && i.status.ready && i.status.containerId ? i : undefined;
    }, { timeoutMs: 30_000, message: 'cam running and ready' });
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/greeting`)).text(), 'hello from edge-c1\n');
    assert.deepEqual(pm.containers('outpost.dev/node=edge-c1'), [first.status?.containerId]);

    assert.equal(cluster.cli(['apply', '-f', '-'], appYaml('bonjour')).code, 0);
    const updated = await waitFor(async () => {
      const i = await instance();
      return i.status?.ready && i.status.containerId !== first.status?.containerId && i.status.templateHash === i.spec.templateHash ? i : undefined;
    }, { timeoutMs: 30_000, message: 'cam replaced and ready' });
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/greeting`)).text(), 'bonjour from edge-c1\n');
    assert.deepEqual(pm.containers('outpost.dev/node=edge-c1'), [updated.status?.containerId]);

    await agent.kill();
    const restarted = await cluster.restartAgent('edge-c1', cluster.requireHub().url);
    t.after(() => restarted.kill());
    await waitFor(async () => {
      const events = await cluster.api<{ items: { reason: string }[] }>('GET', `${API}/events?object=cam-site-c-0`);
      return events.items.some((e) => e.reason === 'Adopted');
    }, { timeoutMs: 30_000, message: 'Adopted event from the restarted agent' });
    const after = await waitFor(async () => {
      const i = await instance();
      return i.status?.ready ? i : undefined;
    }, { timeoutMs: 30_000, message: 'ready again after the agent restart' });
    assert.equal(after.status?.containerId, updated.status?.containerId, 're-adopted, not recreated');
    assert.equal(after.status?.pid, updated.status?.pid, 'not restarted');
    assert.deepEqual(pm.containers('outpost.dev/node=edge-c1'), [updated.status?.containerId], 'not duplicated');

    assert.equal(cluster.cli(['delete', 'app', 'cam']).code, 0);
    await waitFor(() => pm.containers('outpost.dev/node=edge-c1').length === 0, { timeoutMs: 30_000, message: 'container removed with the app' });

    // A node whose --container-socket names no socket runs no containers, and says why.
    assert.equal(cluster.cli(['apply', '-f', '-'], 'apiVersion: outpost.dev/v1alpha1\nkind: NodeUnit\nmetadata: {name: site-d}\nspec: {}\n').code, 0);
    await cluster.startAgent('edge-d1', 'site-d', ['--container-socket', join(cluster.dir, 'no-engine.sock')]);
    assert.equal(cluster.cli(['apply', '-f', '-'], appYaml('hello').replace('name: cam', 'name: nocam').replace('[site-c]', '[site-d]')).code, 0);
    const failed = await waitFor(async () => {
      const i = await cluster.api<Instance>('GET', `${API}/instances/nocam-site-d-0`).catch(() => undefined);
      return i?.status?.phase === 'Failed' ? i : undefined;
    }, { timeoutMs: 30_000, message: 'nocam Failed on a node without an engine' });
    assert.match(failed.status?.message ?? '', /no Docker or Podman socket at .*no-engine\.sock/);
  });
});
