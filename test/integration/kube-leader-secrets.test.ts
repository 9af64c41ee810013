// Opt-in (a real kube-apiserver: OUTPOST_TEST_KUBE_BIN_DIR): the leader election on a real
// coordination.k8s.io/v1 Lease, and join tokens / node credentials as Secrets shared by replicas.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeSecrets } from '../../cloud-hub/kube/kube-secrets.js';
import { LeaderElector } from '../../cloud-hub/kube/leader-election.js';
import { KubeLeaseClient } from '../../cloud-hub/kube/lease-client.js';
import { systemClock } from '../../shared/clock.js';
import { isOutpostError } from '../../shared/errors.js';
import { silentLogger } from '../../shared/logger.js';
import { kubeSkipReason, startKubeApiServer, type KubeTestServer } from '../helpers/kube-apiserver.js';
import { waitFor, within } from '../helpers/wait.js';

const skip = kubeSkipReason();
const NS = 'outpost-test';

describe('Kubernetes mode: Lease election and Secrets on a real API server', { skip }, () => {
  let server: KubeTestServer;
  let kc: KubeConfig;

  before(async () => {
    server = await startKubeApiServer({ installCrds: false });
    const r = await server.kubectl(['create', 'namespace', NS]);
    assert.equal(r.code, 0, r.stderr);
    kc = new KubeConfig();
    kc.loadFromFile(server.kubeconfigPath);
  });
  after(async () => { await server?.stop(); });

  test('two electors: one leads, a clean stop hands over at once, the Lease names the holder', async () => {
    const events: string[] = [];
    const make = (id: string) => new LeaderElector({
      client: new KubeLeaseClient({ kc, namespace: NS, name: 'election-test' }), clock: systemClock, log: silentLogger(),
      onStartedLeading: () => { events.push(`${id}:start`); }, onStoppedLeading: () => { events.push(`${id}:stop`); },
    }, { identity: id, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 });
    const a = make('replica-a');
    const b = make('replica-b');
    a.start();
    await waitFor(() => a.isLeader, { timeoutMs: 15_000, message: 'a leads' });
    b.start();
    await waitFor(() => b.leader === 'replica-a', { timeoutMs: 15_000, message: 'b observes a' });
    assert.equal(b.isLeader, false);
    const lease = JSON.parse((await server.kubectl(['-n', NS, 'get', 'lease', 'election-test', '-o', 'json'])).stdout) as { spec: { holderIdentity: string; leaseDurationSeconds: number } };
    assert.equal(lease.spec.holderIdentity, 'replica-a');
    assert.equal(lease.spec.leaseDurationSeconds, 3);
    const stopped = Date.now();
    await a.stop();
    await waitFor(() => b.isLeader, { timeoutMs: 15_000, message: 'b takes over after the release' });
    const takeoverMs = Date.now() - stopped;
    process.stdout.write(`# takeover after a clean stop: ${takeoverMs} ms (retry period 500 ms)\n`);
    assert.deepEqual(events, ['replica-a:start', 'replica-a:stop', 'replica-b:start']);
    await b.stop();
    const released = JSON.parse((await server.kubectl(['-n', NS, 'get', 'lease', 'election-test', '-o', 'json'])).stdout) as { spec: { holderIdentity?: string } };
    assert.equal(released.spec.holderIdentity ?? '', '', 'released on stop');
  });

  test('a credential issued by one replica is accepted by the other; only hashes are stored; revocation reaches both', async () => {
    const a = await KubeSecrets.open({ kube: { kc, namespace: NS }, log: silentLogger() });
    const b = await KubeSecrets.open({ kube: { kc, namespace: NS }, log: silentLogger() });
    try {
      const { token, info } = await a.createJoinToken({ unit: 'site-a', ttlMs: 60_000, uses: 1, description: 'test', labels: { zone: 'north' } });
      assert.deepEqual((await b.listJoinTokens()).map((t) => [t.id, t.unit, t.usesLeft, t.labels.zone]), [[info.id, 'site-a', 1, 'north']]);
      assert.deepEqual(await b.checkJoinToken(token), { id: info.id, unit: 'site-a', labels: { zone: 'north' } });
      const { credential, unit } = await b.joinNode(token, 'edge-1');
      assert.equal(unit, 'site-a');
      assert.deepEqual(b.authenticateNode(credential), { node: 'edge-1', unit: 'site-a' }, 'the issuing replica at once');
      await waitFor(() => a.authenticateNode(credential), { timeoutMs: 10_000, message: 'the other replica through its watch' });
      assert.equal(a.authenticateNode(`${credential.split('.')[0]}.${'x'.repeat(43)}`), undefined, 'wrong secret refused');
      assert.equal(await a.hasNode('edge-1'), true);
      await assert.rejects(Promise.resolve(a.joinNode(token, 'edge-2')), (e) => isOutpostError(e, 'TOKEN_USED_UP'));
      const second = await a.createJoinToken({ unit: 'site-a', ttlMs: 60_000, uses: null });
      await assert.rejects(Promise.resolve(a.joinNode(second.token, 'edge-1')), (e) => isOutpostError(e, 'NODE_EXISTS'));
      await assert.rejects(Promise.resolve(a.checkJoinToken(`${info.id}.${'y'.repeat(43)}`)), (e) => isOutpostError(e, 'TOKEN_INVALID'));
      const expired = await a.createJoinToken({ unit: 'site-a', ttlMs: 1, uses: 1 });
      await new Promise((r) => setTimeout(r, 20));
      await assert.rejects(Promise.resolve(a.checkJoinToken(expired.token)), (e) => isOutpostError(e, 'TOKEN_EXPIRED'));

      // Nothing secret in the Secrets: no token secret, no credential secret, in any value.
      const all = JSON.parse((await server.kubectl(['-n', NS, 'get', 'secrets', '-l', 'outpost.dev/secret', '-o', 'json'])).stdout) as { items: { metadata: { labels: Record<string, string> }; data: Record<string, string> }[] };
      assert.ok(all.items.length >= 4);
      const values = all.items.flatMap((s) => Object.values(s.data).map((v) => Buffer.from(v, 'base64').toString('utf8'))).join('\n');
      for (const plain of [token, credential, second.token, expired.token]) assert.ok(!values.includes(plain.split('.')[1] as string), 'no plaintext secret stored');
      assert.deepEqual(all.items.map((s) => s.metadata.labels['outpost.dev/secret']).sort(), ['join-token', 'join-token', 'join-token', 'node-credential']);

      await a.revokeNode('edge-1');
      assert.equal(a.authenticateNode(credential), undefined);
      await waitFor(() => b.authenticateNode(credential) === undefined, { timeoutMs: 10_000, message: 'revocation reaches the other replica' });
      assert.equal(await b.hasNode('edge-1'), false);
      assert.equal(await a.deleteJoinToken(second.info.id), true);
      assert.equal(await a.deleteJoinToken(second.info.id), false);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('outpost hub --store kubernetes refuses a namespace that does not exist, with a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-kube-ns-'));
    try {
      const child = spawn(process.execPath, ['bin/outpost.js', 'hub', '--store', 'kubernetes', '--kubeconfig', server.kubeconfigPath, '--namespace', 'no-such-ns', '--data', join(dir, 'hub'), '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      const code = await within(new Promise<number | null>((resolve) => child.on('exit', resolve)), 60_000, 'hub exits');
      assert.equal(code, 1);
      assert.match(stderr, /the hub namespace "no-such-ns" does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
