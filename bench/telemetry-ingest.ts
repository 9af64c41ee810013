// Telemetry ingest: QoS 1 messages per second from simulated devices into one agent's embedded
// broker, each PUBACK released only after the message is committed to the outbox (SQLite,
// synchronous=FULL), side by side with the same load sent to a mosquitto from apt (in memory,
// persistence false: no durability, so the figures are compared, not equated).
// Target (architecture.md): >= 20 000 msg/s durable, and >= half of mosquitto's rate.
// Options: --devices N (50) --messages M per device (2000) --window W in flight per device (100)
// --protocol 4|5 (4: MQTT 3.1.1 straight into aedes; 5: through the broker's MQTT 5 adapter)
// --launcher-flags (the broker's process gets what bin/outpost-agent gives a production agent:
// MALLOC_ARENA_MAX=1 --single-threaded-gc --v8-pool-size=1 --semi-space-growth-factor=1; without it,
// node's defaults) --results DIR (where the report goes; bench/results by default).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '../shared/devices/topics.js';
import { freePort } from '../shared/free-port.js';

const repoRoot = new URL('..', import.meta.url).pathname;
const PASSWORD = 'bench-password';

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `dev-${i}`);

/** The agent side, in its own process: cache + outbox file + embedded broker. Prints its port. */
async function agentChild(dir: string, devices: number): Promise<void> {
  const { openAgentDatabase } = await import('../edge-agent/cache/database.js');
  const { DesiredCache } = await import('../edge-agent/cache/desired-cache.js');
  const { Outbox } = await import('../edge-agent/cache/outbox.js');
  const { DeviceBroker } = await import('../edge-agent/devices/device-broker.js');
  const { createDeviceMetrics } = await import('../edge-agent/devices/device-metrics.js');
  const { hashPassword } = await import('../edge-agent/devices/password.js');
  const { silentLogger } = await import('../shared/logger.js');
  const { createRegistry } = await import('../shared/metrics.js');
  const db = openAgentDatabase(join(dir, 'cache.db'), silentLogger()).db;
  const cache = new DesiredCache(db);
  const outbox = new Outbox(db);
  const hash = await hashPassword(PASSWORD, 1024);
  const api = 'outpost.dev/v1alpha1';
  const objects = [
    { apiVersion: api, kind: 'DeviceModel', metadata: { name: 'meter' }, spec: { properties: [{ name: 'power', type: 'float', access: 'ReadOnly' }, { name: 'seq', type: 'int', access: 'ReadOnly' }] } },
    ...names(devices).flatMap((n) => [
      { apiVersion: api, kind: 'Device', metadata: { name: n, generation: 1 }, spec: { model: 'meter', node: 'bench' } },
      { apiVersion: api, kind: 'DeviceCredential', metadata: { name: n }, spec: { device: n, username: n, passwordHash: hash, createdAt: new Date().toISOString() } },
    ]),
  ];
  cache.apply({ type: 'sync', revision: 1, objects: objects as never, deletes: [] });
  const broker = new DeviceBroker(
    { cache, outbox, metrics: createDeviceMetrics(createRegistry('bench'), outbox), log: silentLogger(), node: 'bench', unit: 'bench' },
    { listen: { host: '127.0.0.1', port: 0 } },
  );
  await broker.start();
  process.on('message', () => {
    process.send?.({ rows: outbox.telemetryQueued().rows });
  });
  process.stdout.write(`${broker.addresses().tcp!.port}\n`);
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        child.stdout?.off('data', onData);
        resolve(out.split('\n')[0]!);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

function connect(url: string, options: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/** Every device publishes `perDevice` QoS 1 messages with at most `window` unacknowledged; msg/s over all. */
async function drive(url: string, devices: string[], perDevice: number, window: number, auth: boolean, protocolVersion: 4 | 5): Promise<{ msgPerSec: number; seconds: number; total: number }> {
  const clients = await Promise.all(devices.map((d) => connect(url, { clientId: d, clean: true, protocolVersion, ...(auth ? { username: d, password: PASSWORD } : {}) })));
  const started = performance.now();
  await Promise.all(clients.map((c, i) => new Promise<void>((resolve, reject) => {
    const topic = topics.telemetry(devices[i]!);
    let sent = 0;
    let acked = 0;
    const sendOne = () => {
      const n = sent++;
      c.publish(topic, `{"power":${(n % 1000) / 10},"seq":${n}}`, { qos: 1 }, (err) => {
        if (err) return reject(err);
        if (++acked === perDevice) return resolve();
        if (sent < perDevice) sendOne();
      });
    };
    for (let k = 0; k < Math.min(window, perDevice); k++) sendOne();
  })));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.endAsync()));
  const total = devices.length * perDevice;
  return { msgPerSec: Math.round(total / seconds), seconds: Number(seconds.toFixed(2)), total };
}

export async function telemetryIngest(args: string[]): Promise<void> {
  const devices = flag(args, 'devices', 50);
  const perDevice = flag(args, 'messages', 2000);
  const window = flag(args, 'window', 100);
  const protocolVersion = flag(args, 'protocol', 4) === 5 ? 5 : 4;
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-telemetry-'));
  const children: ChildProcess[] = [];
  try {
    // Agent: embedded broker, durable outbox.
    // Not bin/outpost.js: the broker, the outbox and the agent's ingest path in a child of its own.
    const launcherFlags = args.includes('--launcher-flags');
    const nodeFlags = launcherFlags ? ['--single-threaded-gc', '--v8-pool-size=1', '--semi-space-growth-factor=1'] : [];
    const agent = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', join(repoRoot, 'bench/telemetry-ingest.ts'), '--child', dir, String(devices)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env: launcherFlags ? { ...process.env, MALLOC_ARENA_MAX: '1' } : process.env });
    children.push(agent);
    const agentPort = Number(await firstLine(agent));
    const agentRun = await drive(`mqtt://127.0.0.1:${agentPort}`, names(devices), perDevice, window, true, protocolVersion);
    const rows = await new Promise<number>((resolve) => {
      agent.once('message', (m: { rows: number }) => resolve(m.rows));
      agent.send('rows');
    });
    if (rows !== agentRun.total) throw new Error(`outbox holds ${rows} telemetry rows; ${agentRun.total} were acknowledged`);
    agent.kill('SIGKILL');

    // mosquitto, same load, in memory.
    let mosquittoRun: Awaited<ReturnType<typeof drive>> | undefined;
    let mosquittoNote = '';
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 100000\n`);
    const mosq = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(mosq);
    const started = await new Promise<boolean>((resolve) => {
      mosq.once('error', () => resolve(false));
      setTimeout(() => resolve(mosq.exitCode === null), 500);
    });
    if (started) mosquittoRun = await drive(`mqtt://127.0.0.1:${port}`, names(devices), perDevice, window, false, protocolVersion);
    else mosquittoNote = 'mosquitto not available (apt-get install mosquitto)';

    const ratio = mosquittoRun ? Number((agentRun.msgPerSec / mosquittoRun.msgPerSec).toFixed(2)) : null;
    const report = {
      scenario: 'telemetry-ingest', date: new Date().toISOString(), inputs: { devices, perDevice, window, protocolVersion, payload: 'JSON ~30 bytes', brokerNodeFlags: nodeFlags, brokerMallocArenaMax: launcherFlags ? '1' : null },
      machine: { cpus: cpus().length, memoryBytes: totalmem(), node: process.version },
      figures: { agentDurableMsgPerSec: agentRun.msgPerSec, agentSeconds: agentRun.seconds, outboxRows: rows, mosquittoInMemoryMsgPerSec: mosquittoRun?.msgPerSec ?? null, ratio },
      note: `QoS 1, PUBACK after the SQLite commit (WAL, synchronous=FULL, group commit) on the agent; mosquitto 2 with persistence false. Load generator: one node process with ${devices} mqtt.js clients. ${mosquittoNote}`.trim(),
    };
    const ri = args.indexOf('--results');
    const resultsDir = ri >= 0 && args[ri + 1] ? args[ri + 1]! : join(repoRoot, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `telemetry-ingest${protocolVersion === 5 ? '-mqtt5' : ''}.json`), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`agent (durable):      ${agentRun.msgPerSec} msg/s (${agentRun.total} msgs in ${agentRun.seconds} s; ${rows} rows in the outbox)`);
    if (mosquittoRun) console.log(`mosquitto (memory):   ${mosquittoRun.msgPerSec} msg/s (${mosquittoRun.total} msgs in ${mosquittoRun.seconds} s)`);
    console.log(`telemetry-ingest ${agentRun.msgPerSec} msg/s durable (target >= 20000), ${ratio === null ? 'no mosquitto' : `${ratio} x mosquitto (target >= 0.5)`}`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('telemetry-ingest.ts') && process.argv[2] === '--child') {
  await agentChild(process.argv[3]!, Number(process.argv[4]));
}
