import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { isOutpostError } from '../../shared/errors.js';
import { RegistryState } from '../../edge-agent/registry/registry-state.js';
import { RegistryWatches } from '../../edge-agent/registry/registry-watches.js';
import { ManualClock } from '../helpers/manual-clock.js';

const ttl = { address: '10.0.0.1', port: 80, protocol: 'tcp' as const, metadata: {}, weight: 100, lease: { kind: 'ttl' as const, ttlMs: 60_000 } };

function setup(maxWatchers = 3) {
  const registry = new RegistryState({ db: new Database(':memory:'), clock: new ManualClock() }, { node: 'n1', unit: 'u1' });
  const counts: string[] = [];
  const watches = new RegistryWatches(registry, { maxWatchers }, (kind, open) => counts.push(`${kind}=${open}`));
  watches.start();
  return { registry, watches, counts };
}

test('registry watches: a wait ends on the change it waits for, not on others', async () => {
  const { registry, watches } = setup();
  const after = registry.index();
  let done = false;
  const wait = watches.wait(() => registry.serviceIndex('web') > after, 60_000, new AbortController().signal).then(() => { done = true; });
  registry.register({ service: 'other', id: 'o', ...ttl });
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'a change to another service does not answer it');
  registry.register({ service: 'web', id: 'w', ...ttl });
  await wait;
  assert.equal(done, true);
  watches.stop();
});

test('registry watches: a wait ends when its time runs out or its client goes away; stop ends all', async () => {
  const { registry, watches } = setup();
  await watches.wait(() => false, 20, new AbortController().signal);
  const gone = new AbortController();
  const pending = watches.wait(() => false, 60_000, gone.signal);
  gone.abort();
  await pending;
  const last = watches.wait(() => false, 60_000, new AbortController().signal);
  watches.stop();
  await last;
  assert.equal(registry.index(), 0);
});

test('registry watches: open watches are bounded and counted', () => {
  const { watches, counts } = setup(3);
  const a = watches.acquire('blocking');
  const b = watches.acquire('stream');
  const c = watches.acquire('stream');
  assert.throws(() => watches.acquire('blocking'), (e) => isOutpostError(e, 'UNAVAILABLE'));
  a();
  a();
  assert.deepEqual(watches.counts(), { blocking: 0, stream: 2 }, 'a slot given back twice counts once');
  const d = watches.acquire('blocking');
  for (const release of [b, c, d]) release();
  assert.deepEqual(watches.counts(), { blocking: 0, stream: 0 });
  assert.deepEqual(counts, ['blocking=1', 'stream=1', 'stream=2', 'blocking=0', 'blocking=1', 'stream=1', 'stream=0', 'blocking=0']);
});
