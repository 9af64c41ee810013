// Agent side of the global view (issue 6): reports into the outbox coalesced per record key, the
// digest comparison at connect, and lookups across units from the hub with the last answer cached
// in SQLite. Real RegistryState, Outbox and SQLite files; the hub endpoints are an in-memory double.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Outbox } from '../../edge-agent/cache/outbox.js';
import { HubLookup } from '../../edge-agent/registry/hub-lookup.js';
import type { HubRegistryApi } from '../../edge-agent/registry/hub-registry-api.js';
import { HubReporter } from '../../edge-agent/registry/hub-reporter.js';
import { createHubViewMetrics } from '../../edge-agent/registry/hub-view-metrics.js';
import { Registry as MetricsRegistry } from 'prom-client';
import type { RegistryRecord, ServiceInstance } from '../../edge-agent/registry/records.js';
import { RegistryState, type RegisterInput } from '../../edge-agent/registry/registry-state.js';
import { silentLogger } from '../../shared/logger.js';
import { OutpostError } from '../../shared/errors.js';
import { originDigests, type OriginDigest } from '../../shared/registry/digest.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';

const input = (service: string, id: string, extra: Partial<RegisterInput> = {}): RegisterInput =>
  ({ service, id, address: '10.0.0.1', port: 8080, protocol: 'http', metadata: {}, weight: 100, lease: { kind: 'ttl', ttlMs: 10_000 }, ...extra });
const other = (unit: string, id: string, health: 'passing' | 'critical' = 'passing'): ServiceInstance =>
  ({ service: 'web', id, node: `${unit}-n`, unit, address: '10.9.0.1', port: 80, protocol: 'http', metadata: {}, weight: 100, health, lease: { kind: 'ttl', ttlMs: 5000 } });

class FakeHub implements HubRegistryApi {
  digests: Record<string, OriginDigest> = {};
  answers = new Map<string, ServiceInstance[]>();
  calls = 0;
  down = false;
  digest(): Promise<Record<string, OriginDigest>> {
    return this.down ? Promise.reject(new OutpostError('UNAVAILABLE', 'hub down')) : Promise.resolve(this.digests);
  }
  service(name: string): Promise<ServiceInstance[]> {
    this.calls++;
    return this.down ? Promise.reject(new OutpostError('UNAVAILABLE', 'hub down')) : Promise.resolve(this.answers.get(name) ?? []);
  }
}

describe('agent side of the global registry view', () => {
  let dir: string;
  let db: Database.Database;
  let state: RegistryState;
  let outbox: Outbox;
  let hub: FakeHub;
  const queued = () => outbox.batch(10_000).filter((i) => i.kind === 'registry-record').map((i) => i.body as RegistryRecord);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-registry-hub-agent-'));
    db = new Database(join(dir, 'cache.db'));
    db.pragma('journal_mode = WAL');
    state = new RegistryState({ db, clock: new ManualClock() }, { node: 'n1', unit: 'u1' });
    outbox = new Outbox(db);
    hub = new FakeHub();
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('changes reach the outbox coalesced per record key, own and replicated alike', async () => {
    const reporter = new HubReporter({ registry: state, outbox, hub, log: silentLogger() }, { flushDelayMs: 5 });
    reporter.start();
    state.register(input('web', 'a'));
    state.register(input('web', 'b'));
    state.setHealth('web', 'a', 'critical');
    state.mergeRemote([{ key: 'db/x', origin: 'n2', version: { incarnation: 1, counter: 1 }, instance: { ...other('u1', 'x'), service: 'db', node: 'n2' } }]);
    await waitFor(() => queued().length === 3, { timeoutMs: 2000, message: 'three queued records' });
    const byKey = new Map(queued().map((r) => [r.key, r]));
    assert.equal(byKey.get('web/a')?.instance?.health, 'critical', 'only the newest version of web/a is queued');
    assert.equal(byKey.get('db/x')?.origin, 'n2');
    state.deregister('web', 'b');
    reporter.stop(); // flushes what is pending
    assert.equal(queued().length, 3);
    assert.equal(queued().find((r) => r.key === 'web/b')?.instance, undefined, 'the tombstone replaced the live record');
  });

  test('at connect only the origins whose digest differs from the hub are re-queued', async () => {
    const reporter = new HubReporter({ registry: state, outbox, hub, log: silentLogger() });
    state.register(input('web', 'a'));
    state.mergeRemote([{ key: 'db/x', origin: 'n2', version: { incarnation: 1, counter: 1 }, instance: { ...other('u1', 'x'), service: 'db', node: 'n2' } }]);
    const all = [...state.records()];
    hub.digests = originDigests(all.filter((r) => r.origin === 'n2'));
    assert.equal(await reporter.resyncWithHub(), 1);
    assert.deepEqual(queued().map((r) => r.key), ['web/a']);
    hub.digests = originDigests(all);
    assert.equal(await reporter.resyncWithHub(), 0);
    // The hub holds a record this node has since deleted: the tombstone goes up.
    state.deregister('web', 'a');
    assert.equal(await reporter.resyncWithHub(), 1);
    assert.equal(queued().find((r) => r.key === 'web/a')?.instance, undefined);
  });

  test('a burst of lookups of unknown services asks the hub a bounded number of times at once', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => { release = r; });
    let calls = 0;
    const slowHub: HubRegistryApi = { digest: () => Promise.resolve({}), service: async () => { calls++; await gate; return []; } };
    const lookup = new HubLookup({ registry: state, hub: slowHub, db, linkUp: () => true, log: silentLogger() }, { maxInflight: 4 });
    const answers = Promise.all(Array.from({ length: 20 }, (_, i) => lookup.lookup(`name-${i}`, {})));
    await waitFor(() => calls === 4, { timeoutMs: 2000, message: 'four hub requests' });
    release();
    assert.deepEqual(await answers, Array.from({ length: 20 }, () => []));
    assert.equal(calls, 4);
  });

  test('other units come from the hub after local ones, and from the cache when the link is down or across restarts', async () => {
    let now = 1_000_000;
    let up = true;
    const metricsRegistry = new MetricsRegistry();
    const metrics = createHubViewMetrics(metricsRegistry);
    const make = () => new HubLookup({ registry: state, hub, db, linkUp: () => up, log: silentLogger(), metrics }, { freshMs: 5000, now: () => now });
    state.register(input('web', 'local'));
    hub.answers.set('web', [other('u2', 'r1'), other('u3', 'r2', 'critical'), other('u1', 'mine')]);
    const lookup = make();
    let answer = await lookup.lookup('web', {});
    assert.deepEqual(answer.map((i) => [i.id, i.nearness]), [['local', 'node'], ['r1', 'remote']], 'healthy only, own unit never taken from the hub');
    assert.deepEqual((await lookup.lookup('web', { all: true })).map((i) => i.id), ['local', 'r1', 'r2']);
    assert.equal(hub.calls, 1, 'a fresh answer is reused');
    assert.deepEqual((await lookup.lookup('web', { unit: 'u3', all: true })).map((i) => i.id), ['r2']);
    assert.deepEqual((await lookup.lookup('web', { unit: 'u1' })).map((i) => i.id), ['local']);

    now += 10_000;
    hub.answers.set('web', [other('u2', 'r1'), other('u2', 'r3')]);
    assert.deepEqual((await lookup.lookup('web', {})).map((i) => i.id), ['local', 'r1'], 'an old answer is returned at once, never waiting for the hub');
    await waitFor(async () => (await lookup.lookup('web', {})).some((i) => i.id === 'r3'), { timeoutMs: 2000, message: 'the background refresh' });
    assert.equal(hub.calls, 2);

    up = false;
    now += 60_000;
    hub.answers.set('web', []);
    assert.deepEqual((await lookup.lookup('web', {})).map((i) => i.id), ['local', 'r1', 'r3'], 'link down: the last answer');
    assert.deepEqual((await make().lookup('web', {})).map((i) => i.id), ['local', 'r1', 'r3'], 'restart: the last answer from SQLite');

    up = true;
    hub.down = true;
    const calls = hub.calls;
    assert.deepEqual((await lookup.lookup('web', {})).map((i) => i.id), ['local', 'r1', 'r3'], 'hub failing: the last answer');
    await waitFor(() => hub.calls === calls + 1, { timeoutMs: 2000, message: 'the failed background refresh' });
    await new Promise((r) => setImmediate(r));
    await lookup.lookup('web', {});
    await lookup.lookup('web', {});
    assert.equal(hub.calls, calls + 1, 'a failed request is not repeated at every lookup');
    assert.deepEqual(await lookup.lookup('never-seen', {}), []);
    const bySource = Object.fromEntries((await metrics.remoteLookups.get()).values.map((v) => [v.labels.source, v.value]));
    assert.equal(bySource.hub, 1);
    assert.equal(bySource.none, 1);
    assert.ok((bySource.cache ?? 0) >= 3 && (bySource.stale ?? 0) >= 4, JSON.stringify(bySource));
  });
});
