// DNS across nodes and units (issue 6): two agents of one unit replicating over their peer link and
// an agent of another unit, each with its own DNS server; dig on each node answers nearest first
// (its own instance, then its unit peer's, then the other unit's through the hub), SRV priorities
// say the same, and `<service>.<unit>.outpost` narrows the answer to one unit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster } from '../helpers/cluster.js';
import { nodeUnit } from '../helpers/objects.js';
import { dig, registryCall } from '../helpers/registry-client.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const ARGS = ['--dns-listen', '127.0.0.1:0'];

describe('registry DNS: nearest first across nodes and units', () => {
  const cluster = new TestCluster();
  const agents: Record<string, { localApi: string; dns: string }> = {};

  before(async () => {
    await cluster.startHub();
    for (const u of ['north', 'south']) await cluster.api('POST', `${API}/nodeunits`, nodeUnit(u));
    for (const [name, unit] of [['n1', 'north'], ['n2', 'north'], ['s1', 'south']] as const) {
      const a = await cluster.startAgent(name, unit, ARGS);
      const status = await waitFor(async () => ((await (await fetch(`${a.localApi}/v1/status`)).json()) as { registry: { dns?: string } }).registry.dns, { message: `${name} DNS address` });
      agents[name] = { localApi: a.localApi, dns: status };
    }
    const addresses: Record<string, string> = { n1: '10.1.0.1', n2: '10.1.0.2', s1: '10.2.0.1' };
    for (const [name, a] of Object.entries(agents)) {
      const put = await registryCall(a.localApi, 'PUT', `/v1/registry/services/api/instances/api-${name}`, { address: addresses[name], port: 7000, ttl: '10m' });
      assert.equal(put.status, 200, JSON.stringify(put.body));
    }
  });
  after(() => cluster.cleanup());

  test('A records: own node, then the unit peer, then the other unit', async () => {
    const onN1 = await waitFor(async () => {
      const r = await dig(agents.n1!.dns, 'api.outpost', 'A');
      return r.answers.length === 3 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, message: 'n1 answers with all three (replication and the hub view)' });
    assert.deepEqual(onN1.answers.map((r) => r[4]), ['10.1.0.1', '10.1.0.2', '10.2.0.1']);
    const onN2 = await waitFor(async () => {
      const r = await dig(agents.n2!.dns, 'api.outpost', 'A', ['+tcp']);
      return r.answers.length === 3 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, message: 'n2 answers with all three' });
    assert.deepEqual(onN2.answers.map((r) => r[4]), ['10.1.0.2', '10.1.0.1', '10.2.0.1']);
    const onS1 = await waitFor(async () => {
      const r = await dig(agents.s1!.dns, 'api.outpost', 'A');
      return r.answers.length === 3 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, message: 's1 answers with all three' });
    assert.equal(onS1.answers[0]?.[4], '10.2.0.1', 'its own first');
    assert.deepEqual(onS1.answers.slice(1).map((r) => r[4]).sort(), ['10.1.0.1', '10.1.0.2']);
  });

  test('SRV priorities follow nearness, and a unit label narrows the answer', async () => {
    const srv = await waitFor(async () => {
      const r = await dig(agents.n1!.dns, 'api.outpost', 'SRV');
      return r.answers.length === 3 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, message: 'three SRV records' });
    assert.deepEqual(srv.answers.map((r) => [r[4], r[7]]), [['10', '0a010001.addr.outpost.'], ['20', '0a010002.addr.outpost.'], ['30', '0a020001.addr.outpost.']]);
    const north = await dig(agents.s1!.dns, 'api.north.outpost', 'A');
    assert.deepEqual(north.answers.map((r) => r[4]).sort(), ['10.1.0.1', '10.1.0.2'], 'only unit north, from the other unit');
    const south = await dig(agents.n2!.dns, 'api.south.outpost', 'SRV');
    assert.deepEqual(south.answers.map((r) => [r[4], r[6]]), [['30', '7000']]);
    assert.equal((await dig(agents.n1!.dns, 'api.west.outpost', 'A')).status, 'NXDOMAIN');
  });
});
