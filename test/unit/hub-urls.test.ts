import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HubUrlRing, parseHubUrls } from '../../edge-agent/link/hub-urls.js';
import { isOutpostError } from '../../shared/errors.js';

describe('agent --hub list (hub replicas)', () => {
  test('one URL or a comma-separated list; trailing slashes dropped', () => {
    assert.deepEqual(parseHubUrls('http://a:1/'), ['http://a:1']);
    assert.deepEqual(parseHubUrls(' http://a:1, https://b:2/ ,'), ['http://a:1', 'https://b:2']);
  });

  test('bad lists get a clear error', () => {
    for (const [text, re] of [['', /no URL/], ['ws://a:1', /http:\/\/ or https:\/\//], ['http://a:1,nope', /"nope" is not a URL/], [Array(17).fill('http://a:1').join(','), /at most 16/]] as const) {
      assert.throws(() => parseHubUrls(text), (e) => isOutpostError(e, 'BAD_REQUEST') && re.test(e.message), text);
    }
  });

  test('the ring moves to the next replica after a failure and wraps around', () => {
    const ring = new HubUrlRing('http://a:1,http://b:2');
    assert.equal(ring.current(), 'http://a:1');
    assert.equal(ring.next(), 'http://b:2');
    assert.equal(ring.next(), 'http://a:1');
    const one = new HubUrlRing('http://a:1');
    assert.equal(one.next(), 'http://a:1');
  });
});
