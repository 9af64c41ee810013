import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConvergence, checkFinalViews, checkSubscribers, RegistryModel, type SeenInstance, type Subscriber } from '../../chaos/registry/registry-model.js';

const seen = (id: string, port: number, counter = 1, incarnation = 1): SeenInstance => ({ id, port, health: 'passing', version: { incarnation, counter } });
const failed = (checks: Array<{ name: string; pass: boolean }>) => checks.filter((c) => !c.pass).map((c) => c.name);

function model(): RegistryModel {
  const m = new RegistryModel();
  m.register('a', 'pos', 'a-1', 80, true, 100);
  m.register('a', 'pos', 'a-2', 81, true, 100);
  m.deregister('pos/a-2', true);
  m.register('a', 'pos', 'a-3', 82, false, 100); // unanswered: may or may not exist
  m.register('a', 'pos', 'a-1', 90, false, 150); // unanswered update: either port
  return m;
}

test('registry chaos model: final views are checked against acknowledged operations only', () => {
  const m = model();
  const ok = new Map([['x', new Map([['pos/a-1', seen('a-1', 90)], ['pos/a-3', seen('a-3', 82)]])], ['y', new Map([['pos/a-1', seen('a-1', 80)]])]]);
  assert.deepEqual(failed(checkFinalViews(m, ok)), []);
  const lost = new Map([['x', new Map<string, SeenInstance>()]]);
  assert.deepEqual(failed(checkFinalViews(m, lost)), ['no acknowledged registration lost']);
  const wrongPort = new Map([['x', new Map([['pos/a-1', seen('a-1', 99)]])]]);
  assert.deepEqual(failed(checkFinalViews(m, wrongPort)), ['no acknowledged registration lost']);
  const back = new Map([['x', new Map([['pos/a-1', seen('a-1', 80)], ['pos/a-2', seen('a-2', 81)]])]]);
  assert.deepEqual(failed(checkFinalViews(m, back)), ['no deregistered instance back']);
  const unknown = new Map([['x', new Map([['pos/a-1', seen('a-1', 80)], ['pos/zz', seen('zz', 1)]])]]);
  assert.deepEqual(failed(checkFinalViews(m, unknown)), ['no deregistered instance back']);
});

test('registry chaos model: subscriber histories catch falling indexes and versions, partial lists, and returns', () => {
  const m = model();
  const sub = (...connections: Array<Array<[number, SeenInstance[]]>>): Subscriber[] => [{
    agent: 'a', service: 'pos',
    connections: connections.map((evs, i) => ({ opened: 200 + i, events: evs.map(([index, instances]) => ({ index, at: 0, instances })) })),
  }];
  const good = sub([[1, [seen('a-1', 80), seen('a-2', 81)]], [2, [seen('a-1', 80, 2)]]], [[1, [seen('a-1', 80, 1, 2)]]]);
  assert.deepEqual(failed(checkSubscribers(m, good)), []);
  assert.deepEqual(failed(checkSubscribers(m, sub([[2, [seen('a-1', 80)]], [2, [seen('a-1', 80)]]]))), ['watch indexes only grow']);
  assert.deepEqual(failed(checkSubscribers(m, sub([[1, [seen('a-1', 80, 3)]], [2, [seen('a-1', 80, 2)]]]))), ['versions seen by each subscriber only grow']);
  assert.deepEqual(failed(checkSubscribers(m, sub([[1, [seen('a-1', 80)]], [2, []]]))), ['no empty or partial list pushed']);
  assert.deepEqual(failed(checkSubscribers(m, sub([[1, []]]))), ['no empty or partial list pushed'], 'an own instance acknowledged before the watch opened');
  assert.deepEqual(failed(checkSubscribers(m, sub([[1, [seen('a-1', 80)]]], [[1, []], [2, [seen('a-1', 80)]]]))), ['no empty or partial list pushed'], 'a shrunken first list after a reconnect');
  assert.deepEqual(failed(checkSubscribers(m, sub([[1, [seen('a-1', 80), seen('a-2', 81)]], [2, [seen('a-1', 80)]], [3, [seen('a-1', 80), seen('a-2', 81)]]]))), ['no instance comes back in a watch']);
});

test('registry chaos model: convergence p50 and max, and the limit', () => {
  const r = checkConvergence({ a: 100, b: 300, c: 200 }, 10_000);
  assert.equal(r.p50Ms, 200);
  assert.equal(r.maxMs, 300);
  assert.equal(r.check.pass, true);
  assert.equal(checkConvergence({ a: 100, b: 12_000 }, 10_000).check.pass, false);
  assert.equal(checkConvergence({ a: 100, b: null }, 10_000).check.pass, false);
});
