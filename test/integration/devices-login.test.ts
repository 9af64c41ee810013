import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { topics } from '../../shared/devices/topics.js';
import { silentLogger } from '../../shared/logger.js';
import { createRegistry } from '../../shared/metrics.js';
import { DeviceBroker } from '../../edge-agent/devices/device-broker.js';
import { createDeviceMetrics } from '../../edge-agent/devices/device-metrics.js';
import { connectMqtt, credential, device, openStore, outboxRows, refusedWith, startBroker, thermostatModel } from '../helpers/device-broker.js';

// Device logins on the embedded broker beyond passwords: TLS client certificates (made here with
// the openssl CLI) and the failed-login rate limit; for MQTT 3.1.1 and MQTT 5 clients.

const dir = mkdtempSync(join(tmpdir(), 'outpost-login-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hasOpenssl = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).status === 0;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 20_000 });
}

/** A CA (`name`.crt/.key) and, signed by it, a certificate per entry (`subject`, optional extensions). */
function makeCa(name: string, certs: Array<{ file: string; cn: string; ext?: string }>): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
  for (const c of certs) {
    openssl('req', ...ec, '-keyout', `${c.file}.key`, '-out', `${c.file}.csr`, '-subj', `/CN=${c.cn}`);
    const extFile = join(dir, `${c.file}.ext`);
    writeFileSync(extFile, `${c.ext ?? ''}\n`);
    openssl('x509', '-req', '-in', `${c.file}.csr`, '-CA', `${name}.crt`, '-CAkey', `${name}.key`, '-CAcreateserial', '-out', `${c.file}.crt`, '-days', '2', '-extfile', extFile);
  }
}

const pem = (file: string) => readFileSync(join(dir, file));

const CODES = {
  4: { badCredentials: 4, notAuthorized: 5, clientId: 2, rateLimited: 3 },
  5: { badCredentials: 0x86, notAuthorized: 0x87, clientId: 0x85, rateLimited: 0x9f },
} as const;

describe('device login with a TLS client certificate', { skip: hasOpenssl ? false : 'openssl is not installed (apt-get install openssl)' }, () => {
  let env: Awaited<ReturnType<typeof startBroker>>;
  let tlsUrl = '';
  before(async () => {
    makeCa('ca', [
      { file: 'server', cn: 'edge-1', ext: 'subjectAltName=IP:127.0.0.1,DNS:localhost' },
      { file: 't1', cn: 't1' },
      { file: 'alias', cn: 'some-sensor', ext: 'subjectAltName=DNS:t2' },
      { file: 'far', cn: 'elsewhere' },
      { file: 'cn-t1-san-t2', cn: 't1', ext: 'subjectAltName=DNS:t2' },
    ]);
    makeCa('rogue', [{ file: 'rogue-t1', cn: 't1' }]);
    env = await startBroker(join(dir, 'tls.db'), [
      thermostatModel, device('t1', 1), device('t2', 1), device('elsewhere', 1, {}, { node: 'n9' }), await credential('t2', 'pw-2'),
    ], { tls: { listen: { host: '127.0.0.1', port: 0 }, certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') } });
    tlsUrl = `mqtts://127.0.0.1:${env.broker.addresses().tls!.port}`;
  });
  after(async () => {
    await env?.broker.stop();
    env?.db.close();
  });

  const tls = (file: string | undefined, extra: IClientOptions): IClientOptions => ({
    ca: pem('ca.crt'), rejectUnauthorized: true, ...(file ? { cert: pem(`${file}.crt`), key: pem(`${file}.key`) } : {}), ...extra,
  });

  for (const protocolVersion of [4, 5] as const) {
    const codes = CODES[protocolVersion];
    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a certificate naming the device (CN or DNS SAN) logs it in; other CAs, other names and devices bound elsewhere are refused`, async () => {
      const before = outboxRows(env.outbox, 'telemetry').length;
      const t1 = await connectMqtt(tlsUrl, tls('t1', { clientId: 't1', protocolVersion }));
      await t1.publishAsync(topics.telemetry('t1'), JSON.stringify({ temperature: 20 }), { qos: 1 });
      await t1.endAsync();
      assert.deepEqual(outboxRows(env.outbox, 'telemetry').slice(before).map((r) => (r.body as { device: string }).device), ['t1']);
      // A SAN names the device; a username picks among the certificate's names.
      const t2 = await connectMqtt(tlsUrl, tls('alias', { clientId: 't2-sensor', username: 't2', protocolVersion }));
      await t2.endAsync();
      await assert.rejects(connectMqtt(tlsUrl, tls('t1', { clientId: 't2', username: 't2', protocolVersion })), refusedWith(codes.badCredentials));
      await assert.rejects(connectMqtt(tlsUrl, tls('rogue-t1', { clientId: 't1', protocolVersion })), refusedWith(codes.badCredentials));
      await assert.rejects(connectMqtt(tlsUrl, tls('far', { clientId: 'elsewhere', protocolVersion })), refusedWith(codes.notAuthorized));
      await assert.rejects(connectMqtt(tlsUrl, tls('t1', { clientId: 't2', protocolVersion })), refusedWith(codes.clientId));
      // Without a certificate, a password works over TLS as over TCP.
      const byPassword = await connectMqtt(tlsUrl, tls(undefined, { clientId: 't2', username: 't2-user', password: 'pw-2', protocolVersion }));
      await byPassword.endAsync();
      const metrics = await env.registry.getSingleMetricAsString('outpost_agent_mqtt_rejected_total');
      assert.match(metrics, /reason="bad-certificate"/);
      assert.match(metrics, /reason="not-bound"/);
    });
  }

  test('a certificate with DNS subject alternative names is identified by them only: its CN names no device (RFC 6125 6.4.4)', async () => {
    await assert.rejects(connectMqtt(tlsUrl, tls('cn-t1-san-t2', { clientId: 't1', username: 't1', protocolVersion: 4 })), refusedWith(CODES[4].badCredentials));
    await assert.rejects(connectMqtt(tlsUrl, tls('cn-t1-san-t2', { clientId: 't1', protocolVersion: 4 })), refusedWith(CODES[4].clientId));
    const t2 = await connectMqtt(tlsUrl, tls('cn-t1-san-t2', { clientId: 't2-by-san', protocolVersion: 4 }));
    await t2.endAsync();
  });
});

test('a device may not use a client id of another device whose name extends its own (it would take over that session)', async () => {
  const env = await startBroker(join(dir, 'client-ids.db'), [
    thermostatModel, device('cam', 1), device('cam-2', 1), await credential('cam', 'pw-c'), await credential('cam-2', 'pw-c2'),
  ]);
  try {
    const cam2 = await connectMqtt(env.url, { clientId: 'cam-2', username: 'cam-2-user', password: 'pw-c2' });
    let cam2Closed = false;
    cam2.on('close', () => { cam2Closed = true; });
    const cam = { username: 'cam-user', password: 'pw-c' };
    await assert.rejects(connectMqtt(env.url, { ...cam, clientId: 'cam-2' }), refusedWith(2));
    await assert.rejects(connectMqtt(env.url, { ...cam, clientId: 'cam-2-b' }), refusedWith(2));
    const own = await connectMqtt(env.url, { ...cam, clientId: 'cam-b' });
    await own.endAsync();
    // The takeover would have closed cam-2's connection; a publish round trip shows it is still up.
    await cam2.publishAsync(topics.telemetry('cam-2'), JSON.stringify({ temperature: 3 }), { qos: 1 });
    assert.equal(cam2Closed, false);
    await cam2.endAsync();
  } finally {
    await env.broker.stop();
    env.db.close();
  }
});

test('a TLS certificate file that cannot be read fails the broker start, naming the file, before anything listens', async () => {
  const store = openStore(join(dir, 'bad-tls.db'));
  const broker = new DeviceBroker(
    { ...store, metrics: createDeviceMetrics(createRegistry('outpost_agent_test'), store.outbox), log: silentLogger(), node: 'n1', unit: 'site-a' },
    { listen: { host: '127.0.0.1', port: 0 }, tls: { listen: { host: '127.0.0.1', port: 0 }, certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'missing.key') } },
  );
  try {
    await assert.rejects(broker.start(), /MQTT TLS certificate ".*missing\.crt" cannot be read/);
    assert.deepEqual(broker.addresses(), {});
  } finally {
    await broker.stop();
    store.db.close();
  }
});

describe('failed device logins are rate limited', () => {
  for (const protocolVersion of [4, 5] as const) {
    const codes = CODES[protocolVersion];
    test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: after 3 failures for a username even its right password is refused for now; other devices log in`, async () => {
      const env = await startBroker(join(dir, `limit-${protocolVersion}.db`), [
        thermostatModel, device('t1', 1), device('t2', 1), await credential('t1', 'pw-1'), await credential('t2', 'pw-2'),
      ], { loginLimit: { perUsername: { failures: 3, perMs: 3_600_000 }, perAddress: { failures: 1_000, perMs: 60_000 } } });
      try {
        const t1 = { clientId: 't1', username: 't1-user', protocolVersion };
        for (let i = 0; i < 3; i++) await assert.rejects(connectMqtt(env.url, { ...t1, password: `guess-${i}` }), refusedWith(codes.badCredentials));
        await assert.rejects(connectMqtt(env.url, { ...t1, password: 'pw-1' }), refusedWith(codes.rateLimited));
        const t2 = await connectMqtt(env.url, { clientId: 't2', username: 't2-user', password: 'pw-2', protocolVersion });
        await t2.endAsync();
        const metrics = await env.registry.getSingleMetricAsString('outpost_agent_mqtt_rejected_total');
        assert.match(metrics, /reason="bad-credentials"} 3/);
        assert.match(metrics, /reason="rate-limited"} 1/);
      } finally {
        await env.broker.stop();
        env.db.close();
      }
    });
  }

  test('guesses sent at once for one username are checked at most as many times as it has failures left', async () => {
    const env = await startBroker(join(dir, 'limit-burst.db'), [
      thermostatModel, device('t1', 1), await credential('t1', 'pw-1'),
    ], { loginLimit: { perUsername: { failures: 3, perMs: 3_600_000 }, perAddress: { failures: 1_000, perMs: 60_000 } } });
    try {
      const guesses = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => connectMqtt(env.url, { clientId: `t1-${i}`, username: 't1-user', password: `guess-${i}` })));
      assert.ok(guesses.every((g) => g.status === 'rejected'));
      const metrics = await env.registry.getSingleMetricAsString('outpost_agent_mqtt_rejected_total');
      assert.match(metrics, /reason="bad-credentials"} 3(\n|$)/);
      assert.match(metrics, /reason="rate-limited"} 9(\n|$)/);
    } finally {
      await env.broker.stop();
      env.db.close();
    }
  });

  test('per client address: after the address\'s failures, logins from it are refused whatever the username', async () => {
    const env = await startBroker(join(dir, 'limit-address.db'), [
      thermostatModel, device('t1', 1), await credential('t1', 'pw-1'),
    ], { loginLimit: { perUsername: { failures: 1_000, perMs: 60_000 }, perAddress: { failures: 2, perMs: 3_600_000 } } });
    try {
      await assert.rejects(connectMqtt(env.url, { clientId: 'a', username: 'nobody-1', password: 'x' }), refusedWith(4));
      await assert.rejects(connectMqtt(env.url, { clientId: 'b', username: 'nobody-2', password: 'x' }), refusedWith(4));
      await assert.rejects(connectMqtt(env.url, { clientId: 't1', username: 't1-user', password: 'pw-1' }), refusedWith(3));
    } finally {
      await env.broker.stop();
      env.db.close();
    }
  });
});
