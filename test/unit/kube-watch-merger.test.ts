import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { WatchEvent } from '../../cloud-hub/store/store.js';
import { WatchMerger } from '../../cloud-hub/store/kubernetes/watch-merger.js';
import { nodeUnit } from '../helpers/objects.js';
import { ManualClock } from '../helpers/manual-clock.js';

function event(name: string, revision: number): WatchEvent {
  const object = nodeUnit(name);
  object.metadata.resourceVersion = String(revision);
  return { type: 'ADDED', object, revision };
}

function merger(streams: number, holdBackMs = 100) {
  const clock = new ManualClock();
  const out: number[] = [];
  const m = new WatchMerger({ streams, holdBackMs, clock, deliver: (e) => out.push(e.revision) });
  return { clock, out, m };
}

void describe('WatchMerger (Kubernetes store: per-kind streams into revision order)', () => {
  void test('delivers nothing until every stream is connected, then merges their replays in order', () => {
    const { clock, out, m } = merger(2);
    m.ready(0);
    m.push(0, event('a', 12));
    m.push(0, event('b', 14));
    clock.advance(500);
    assert.deepEqual(out, [], 'stream 1 has not connected: its replay may still hold lower revisions');
    m.ready(1);
    m.push(1, event('c', 13));
    assert.deepEqual(out, [12, 13], 'both streams have progressed to 13 or past it: everything up to 13 is safe');
    clock.advance(100);
    assert.deepEqual(out, [12, 13, 14]);
  });

  void test('an event waits for a quiet stream at most holdBackMs; a late lower revision is delivered, not dropped', () => {
    const { clock, out, m } = merger(2, 100);
    m.ready(0);
    m.ready(1);
    m.push(0, event('a', 20));
    clock.advance(99);
    assert.deepEqual(out, []);
    clock.advance(1);
    assert.deepEqual(out, [20]);
    m.push(1, event('late', 19));
    clock.advance(100);
    assert.deepEqual(out, [20, 19], 'later than its hold-back: delivered out of cross-kind order, never lost');
  });

  void test('progress from bookmarks releases held events at once', () => {
    const { out, m } = merger(3);
    for (const i of [0, 1, 2]) m.ready(i);
    m.push(0, event('a', 31));
    m.push(1, event('b', 30));
    assert.deepEqual(out, []);
    m.advance(2, 31);
    assert.deepEqual(out, [30], 'stream 1 is only at 30');
    m.advance(1, 31);
    assert.deepEqual(out, [30, 31]);
  });

  void test('readyAll() stops waiting for a stream that cannot connect; its events then arrive late, not never', () => {
    const { clock, out, m } = merger(2);
    m.ready(0);
    m.push(0, event('a', 40));
    clock.advance(1000);
    assert.deepEqual(out, []);
    m.readyAll();
    clock.advance(100);
    assert.deepEqual(out, [40]);
    m.push(1, event('b', 39));
    clock.advance(100);
    assert.deepEqual(out, [40, 39]);
  });

  void test('stop() ends delivery and clears its timer', () => {
    const { clock, out, m } = merger(2);
    m.ready(0);
    m.ready(1);
    m.push(0, event('a', 5));
    assert.equal(clock.pending, 1);
    m.stop();
    clock.advance(1000);
    m.push(1, event('b', 6));
    assert.deepEqual(out, []);
    assert.equal(clock.pending, 0);
  });
});
