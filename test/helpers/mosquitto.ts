import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { topics } from '../../shared/devices/topics.js';
import { freePort } from '../../shared/free-port.js';
import { collect, connectMqtt } from './device-broker.js';
import { waitFor } from './wait.js';

// A real mosquitto from apt for the --mqtt-url tests: a password file, the ACL and delivery
// settings shipped in examples/mosquitto, a loopback port, killed with SIGKILL at the end.

export const ACL_FILE = new URL('../../examples/mosquitto/outpost.acl', import.meta.url).pathname;
export const CONF_FILE = new URL('../../examples/mosquitto/mosquitto.conf', import.meta.url).pathname;

/** The delivery settings of the shipped mosquitto.conf (not its listener, files or persistence, which are the test's). */
function shippedSettings(): string {
  return readFileSync(CONF_FILE, 'utf8').split('\n')
    .filter((l) => /^(max_inflight_messages|max_queued_messages|queue_qos0_messages)\s/.test(l))
    .join('\n');
}
/** The agent's user in the shipped ACL. */
export const AGENT_USER = 'outpost-agent';

/** Whether mosquitto and mosquitto_passwd are installed (the tests skip with a reason otherwise). */
export const hasMosquitto = spawnSync('sh', ['-c', 'command -v mosquitto && command -v mosquitto_passwd'], { encoding: 'utf8' }).status === 0;
export const NO_MOSQUITTO = 'mosquitto is not installed here (apt-get install mosquitto): the --mqtt-url tests are skipped';

export interface Mosquitto {
  url: string;
  port: number;
  stop(): void;
}

/** Starts mosquitto in `dir` with these users (name, password) and the shipped ACL; resolves once the first user can log in. */
export async function startMosquitto(dir: string, users: Array<[string, string]>, extraConfig = ''): Promise<Mosquitto> {
  // Started as root, mosquitto runs as user mosquitto: its files must be readable by it.
  chmodSync(dir, 0o755);
  const acl = join(dir, 'outpost.acl');
  writeFileSync(acl, readFileSync(ACL_FILE), { mode: 0o644 });
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, '', { mode: 0o644 });
  for (const [user, pw] of users) {
    const r = spawnSync('mosquitto_passwd', ['-b', passwd, user, pw], { encoding: 'utf8' });
    assert.equal(r.status, 0, `mosquitto_passwd: ${r.stderr}`);
  }
  chmodSync(passwd, 0o644);
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous false\npassword_file ${passwd}\nacl_file ${acl}\npersistence false\n${shippedSettings()}\n${extraConfig}`);
  const child: ChildProcess = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  child.stderr?.on('data', (d: Buffer) => { said = (said + d.toString()).slice(-4096); });
  child.once('exit', (code) => { said += `\n(exited ${code})`; });
  const url = `mqtt://127.0.0.1:${port}`;
  const [user, password] = users[0]!;
  const probe = await waitFor(async () => connectMqtt(url, { clientId: 'probe', username: user, password }).catch(() => undefined), { timeoutMs: 10_000, message: 'mosquitto accepts logins' })
    .catch((err: unknown) => { throw new Error(`${(err as Error).message}; mosquitto said: ${said}`); });
  await probe.endAsync();
  return { url, port, stop: () => { child.kill('SIGKILL'); } };
}

/**
 * Resolves once an agent serving `device` answers its twin/get through the broker at `url`: the
 * agent connects and subscribes in the background, so ask until it answers (bounded).
 */
export async function agentAnswers(url: string, device: string, password: string): Promise<void> {
  const c = await connectMqtt(url, { clientId: `${device}-probe`, username: device, password });
  try {
    await c.subscribeAsync(topics.getResponse(device), { qos: 1 });
    const answered = collect(c, topics.getResponse(device), 1, 20_000);
    const asking = setInterval(() => c.publish(topics.get(device), '', { qos: 1 }), 100);
    try { await answered; } finally { clearInterval(asking); }
  } finally {
    await c.endAsync();
  }
}
