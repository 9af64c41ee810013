import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket, { type Packet, type SrvAnswer, type StringAnswer } from 'dns-packet';
import { addressName, answerQuery, encodeForUdp, RCODE } from '../../edge-agent/registry/dns-answer.js';
import type { InstanceView } from '../../edge-agent/registry/records.js';
import type { ServiceLookup } from '../../edge-agent/registry/service-lookup.js';

function view(id: string, address: string, nearness: InstanceView['nearness'], extra: Partial<InstanceView> = {}): InstanceView {
  return { service: 'db', id, node: 'n', unit: nearness === 'remote' ? 'far' : 'u1', address, port: 5432, protocol: 'tcp', metadata: {}, weight: 100, health: 'passing', lease: { kind: 'ttl', ttlMs: 1000 }, nearness, ...extra };
}

const instances = [view('a', '10.0.0.1', 'node'), view('b', '10.0.0.2', 'unit', { weight: 7 }), view('c', 'fd00::3', 'unit'), view('d', '10.0.0.1', 'remote')];
const calls: Array<[string, string | undefined]> = [];
const lookup: ServiceLookup = (service, options) => {
  calls.push([service, options.unit]);
  return Promise.resolve(service === 'db' ? instances.filter((i) => options.unit === undefined || i.unit === options.unit) : []);
};
const q = (name: string, type: 'A' | 'AAAA' | 'SRV' | 'TXT'): Packet => ({ type: 'query', id: 42, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
const options = { domain: 'outpost', ttlSeconds: 5 };

test('dns: A answers keep nearness order and drop repeated addresses; AAAA only IPv6', async () => {
  const { response, rcode } = await answerQuery(q('DB.outpost.', 'A'), lookup, options);
  assert.equal(rcode, RCODE.NOERROR);
  assert.equal(response.id, 42);
  assert.deepEqual((response.answers as StringAnswer[]).map((a) => a.data), ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual((response.answers as StringAnswer[]).map((a) => a.ttl), [5, 5]);
  const aaaa = await answerQuery(q('db.u1.outpost', 'AAAA'), lookup, options);
  assert.deepEqual((aaaa.response.answers as StringAnswer[]).map((a) => a.data), ['fd00::3']);
  assert.deepEqual(calls.at(-1), ['db', 'u1'], 'the unit label is passed to the lookup');
  // A name that exists but has no record of the asked type is NOERROR with no answer.
  const txt = await answerQuery(q('db.outpost', 'TXT'), lookup, options);
  assert.equal(txt.rcode, RCODE.NOERROR);
  assert.equal(txt.response.answers?.length, 0);
});

test('dns: SRV priorities by nearness, weights, targets resolvable through the addr zone', async () => {
  const { response } = await answerQuery(q('_db._tcp.outpost', 'SRV'), lookup, options);
  const srv = response.answers as SrvAnswer[];
  assert.deepEqual(srv.map((a) => [a.data.priority, a.data.weight, a.data.port]), [[10, 100, 5432], [20, 7, 5432], [20, 100, 5432], [30, 100, 5432]]);
  assert.equal(srv[0]?.data.target, '0a000001.addr.outpost');
  assert.equal(srv[2]?.data.target, 'fd000000000000000000000000000003.addr.outpost');
  assert.equal(response.additionals?.length, 3, 'one address record per distinct target');
  const back = await answerQuery(q(addressName('fd00::3', 'outpost'), 'AAAA'), lookup, options);
  assert.deepEqual((back.response.answers as StringAnswer[]).map((a) => a.data), ['fd00:0000:0000:0000:0000:0000:0000:0003'], 'the same address, written in full');
  const v4 = await answerQuery(q('0a000002.addr.outpost', 'A'), lookup, options);
  assert.deepEqual((v4.response.answers as StringAnswer[]).map((a) => a.data), ['10.0.0.2']);
});

test('dns: NXDOMAIN, REFUSED, FORMERR and NOTIMP', async () => {
  assert.equal((await answerQuery(q('nothing.outpost', 'A'), lookup, options)).rcode, RCODE.NXDOMAIN);
  assert.equal((await answerQuery(q('a.b.c.outpost', 'A'), lookup, options)).rcode, RCODE.NXDOMAIN);
  assert.equal((await answerQuery(q('bad_label.outpost', 'A'), lookup, options)).rcode, RCODE.NXDOMAIN);
  assert.equal((await answerQuery(q('zz.addr.outpost', 'A'), lookup, options)).rcode, RCODE.NXDOMAIN);
  assert.equal((await answerQuery(q('example.com', 'A'), lookup, options)).rcode, RCODE.REFUSED);
  assert.equal((await answerQuery({ type: 'query', id: 1, questions: [] }, lookup, options)).rcode, RCODE.FORMERR);
  assert.equal((await answerQuery({ ...q('db.outpost', 'A'), opcode: 'STATUS' } as Packet, lookup, options)).rcode, RCODE.NOTIMP);
  const encoded = dnsPacket.decode(dnsPacket.encode((await answerQuery(q('nothing.outpost', 'A'), lookup, options)).response));
  assert.equal((encoded as { rcode?: string }).rcode, 'NXDOMAIN');
  assert.equal((encoded as { flag_rd?: boolean }).flag_rd, true, 'RD is echoed');
});

test('dns: a UDP answer too long for 512 bytes is truncated with TC, nearest answers kept', async () => {
  const many = Array.from({ length: 60 }, (_, i) => view(`i${i}`, `10.1.${Math.floor(i / 250)}.${i % 250}`, i < 5 ? 'node' : 'unit'));
  const big: ServiceLookup = () => Promise.resolve(many);
  const { response } = await answerQuery(q('db.outpost', 'A'), big, options);
  assert.equal(response.answers?.length, 60);
  const buf = encodeForUdp(response, 512);
  assert.ok(buf.length <= 512);
  const decoded = dnsPacket.decode(buf) as Packet & { flag_tc?: boolean };
  assert.equal(decoded.flag_tc, true);
  assert.ok((decoded.answers?.length ?? 0) > 0);
  assert.equal((decoded.answers?.[0] as StringAnswer).data, '10.1.0.0', 'the nearest answer is kept');
});
