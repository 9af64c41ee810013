// --mqtt-url durability with real processes: an agent (a child process, ExternalBroker on a real
// SQLite file) is SIGKILLed while a device streams QoS 1 telemetry into mosquitto, and restarted.
// mosquitto keeps what the agent had not acknowledged in the agent's persistent session; after the
// restart every message is in the outbox, in order. The only duplicates allowed are messages the
// killed agent had committed but not yet acknowledged (README "Devices (MQTT)", --mqtt-url).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { topics } from '../../shared/devices/topics.js';
import { hashPassword } from '../../edge-agent/devices/password.js';
import { connectMqtt, device, thermostatModel, within } from '../helpers/device-broker.js';
import { AGENT_USER, NO_MOSQUITTO, agentAnswers, hasMosquitto, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const repo = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'outpost-mqkill-'));
const MESSAGES = 3000;
const T0 = 1_700_000_000_000;
const children: ChildProcess[] = [];
let mosquitto: Mosquitto | undefined;

after(() => {
  for (const c of children) c.kill('SIGKILL');
  mosquitto?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** An agent process: ExternalBroker of node n1 on `file`, a client of mosquitto. Killed with SIGKILL. */
function startAgent(file: string, objectsFile: string, url: string): ChildProcess {
  const script = join(dir, 'agent.mts');
  writeFileSync(script, `
    import { readFileSync } from 'node:fs';
    import { openAgentDatabase } from '${repo}edge-agent/cache/database.ts';
    import { DesiredCache } from '${repo}edge-agent/cache/desired-cache.ts';
    import { Outbox } from '${repo}edge-agent/cache/outbox.ts';
    import { ExternalBroker } from '${repo}edge-agent/devices/external-broker.ts';
    import { createDeviceMetrics } from '${repo}edge-agent/devices/device-metrics.ts';
    import { silentLogger } from '${repo}shared/logger.ts';
    import { createRegistry } from '${repo}shared/metrics.ts';
    const db = openAgentDatabase(${JSON.stringify(file)}, silentLogger()).db;
    const cache = new DesiredCache(db); const outbox = new Outbox(db);
    if (cache.list('Device').length === 0) cache.apply({ type: 'sync', revision: 1, objects: JSON.parse(readFileSync(${JSON.stringify(objectsFile)}, 'utf8')), deletes: [] });
    const agent = new ExternalBroker({ cache, outbox, metrics: createDeviceMetrics(createRegistry('x'), outbox), log: silentLogger(), node: 'n1', unit: 'site-a' }, { url: ${JSON.stringify(url)} });
    await agent.start();
  `);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
}

function outboxNumbers(file: string): number[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT body FROM outbox WHERE kind = 'telemetry' ORDER BY seq").all() as Array<{ body: string }>)
      .map((r) => Date.parse((JSON.parse(r.body) as { timestamp: string }).timestamp) - T0);
  } finally {
    db.close();
  }
}

test('--mqtt-url: an agent SIGKILLed mid-stream and restarted loses no telemetry and keeps its order', { skip: hasMosquitto ? false : NO_MOSQUITTO }, async (t) => {
  const agentPassword = 'agent-secret';
  mosquitto = await startMosquitto(dir, [[AGENT_USER, agentPassword], ['t1', 'pw-t1']]);
  const objectsFile = join(dir, 'objects.json');
  const cred = { apiVersion: 'outpost.dev/v1alpha1', kind: 'DeviceCredential', metadata: { name: 't1' }, spec: { device: 't1', username: 't1', passwordHash: await hashPassword('pw-t1', 1024), createdAt: new Date().toISOString() } };
  writeFileSync(objectsFile, JSON.stringify([thermostatModel, device('t1', 1), cred]));
  const file = join(dir, 'agent.db');
  const agentUrl = `mqtt://${AGENT_USER}:${agentPassword}@127.0.0.1:${mosquitto.port}`;

  let agent = startAgent(file, objectsFile, agentUrl);
  await agentAnswers(mosquitto.url, 't1', 'pw-t1');
  const dev: MqttClient = await connectMqtt(mosquitto.url, { clientId: 't1', username: 't1', password: 'pw-t1', protocolVersion: 4 });
  try {
    let killed = false;
    for (let n = 0; n < MESSAGES; n += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => dev.publishAsync(topics.telemetry('t1'), JSON.stringify({ ts: T0 + n + i, temperature: (n + i) % 100 }), { qos: 1 })));
      // Kill the agent once it has stored some, while the device keeps publishing.
      if (!killed && n >= 1000 && outboxNumbers(file).length > 0) {
        agent.kill('SIGKILL');
        await within(new Promise((resolve) => agent.once('exit', resolve)), 10_000, 'the agent exits');
        killed = true;
      }
    }
    assert.ok(killed, 'the agent was killed mid-stream');
    const before = outboxNumbers(file).length;
    t.diagnostic(`killed with ${before} of ${MESSAGES} messages stored`);
    assert.ok(before < MESSAGES, `the killed agent had not stored everything (${before} of ${MESSAGES})`);
    agent = startAgent(file, objectsFile, agentUrl);
    await waitFor(() => new Set(outboxNumbers(file)).size >= MESSAGES, { timeoutMs: 30_000, intervalMs: 200, message: `all ${MESSAGES} messages in the restarted agent's outbox` });
  } finally {
    dev.end(true);
    agent.kill('SIGKILL');
  }
  const got = outboxNumbers(file);
  const firstSeen = got.filter((n, i) => got.indexOf(n) === i);
  assert.deepEqual(firstSeen, Array.from({ length: MESSAGES }, (_, i) => i), 'none lost, in order');
  // Redelivered: only what the killed agent had committed without its PUBACK reaching mosquitto,
  // one contiguous run replayed right after the kill point.
  const duplicates = got.length - MESSAGES;
  t.diagnostic(`messages stored twice (committed, PUBACK lost with the kill): ${duplicates}`);
  assert.ok(duplicates <= 2000, `duplicates: ${duplicates}`);
  if (duplicates > 0) {
    const replayAt = got.findIndex((n, i) => i > 0 && n <= got[i - 1]!);
    assert.deepEqual(got.slice(replayAt, replayAt + duplicates), got.slice(replayAt - duplicates, replayAt), 'the replay repeats the last committed run');
  }
});
