// Hub side of devices (issue 5), through an in-process hub and raw agent sessions: delivery scope
// (node authorization), apply-time model checks, twin reports, telemetry exactly-once and
// retention, the credentials endpoint, and the CLI commands.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { API_VERSION, type AnyObject, type Device, type DeviceCredential, type DeviceModel } from '../../shared/api/index.js';
import type { HubFrame, ReportedFrame, SyncFrame } from '../../shared/protocol/frames.js';
import { verifyPassword } from '../../cloud-hub/devices/credentials.js';
import { nodeUnit } from '../helpers/objects.js';
import { startTestHub, type HubFixture } from '../helpers/in-process-hub.js';
import { connectRaw, type RawAgent } from '../helpers/raw-agent.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub, type RunningHub } from '../../cloud-hub/hub.js';
import { SqliteStore } from '../../cloud-hub/store/sqlite-store.js';
import { TelemetryStore } from '../../cloud-hub/devices/telemetry-store.js';
import { silentLogger } from '../../shared/logger.js';
import { repoRoot, runCli } from '../helpers/cluster.js';
import { HubClient } from '../../cli/client.js';
import { telemetry as printTelemetry } from '../../cli/commands/devices.js';
import { waitFor } from '../helpers/wait.js';

const API = '/apis/outpost.dev/v1alpha1';
const isSync = (f: HubFrame): f is SyncFrame => f.type === 'sync';
const reportedUpTo = (seq: number) => (f: HubFrame): f is ReportedFrame => f.type === 'reported' && f.ackSeq === seq;

const model: DeviceModel = {
  apiVersion: API_VERSION, kind: 'DeviceModel', metadata: { name: 'thermo' },
  spec: {
    properties: [
      { name: 'temperature', type: 'float', unit: '°C', access: 'ReadOnly' },
      { name: 'setpoint', type: 'float', unit: '°C', minimum: 5, maximum: 30, access: 'ReadWrite' },
      { name: 'mode', type: 'enum', enum: ['eco', 'comfort'], access: 'ReadWrite' },
    ],
  },
};
const device = (name: string, home: { node?: string; unit?: string }, extra: Partial<Device['spec']> = {}): Device =>
  ({ apiVersion: API_VERSION, kind: 'Device', metadata: { name }, spec: { model: 'thermo', ...home, ...extra } });

/** Every object key a raw agent holds after its sync frames so far (upserts minus deletes). */
function held(agent: RawAgent): Map<string, AnyObject> {
  const out = new Map<string, AnyObject>();
  for (const f of agent.frames.filter(isSync)) {
    if (f.keys) for (const k of [...out.keys()]) if (!f.keys.some((x) => `${x.kind}/${x.name}` === k)) out.delete(k);
    for (const o of f.objects) out.set(`${o.kind}/${o.metadata.name}`, o);
    for (const d of f.deletes) out.delete(`${d.kind}/${d.name}`);
  }
  return out;
}

describe('devices at the hub', () => {
  let h: HubFixture;
  const cred: Record<string, string> = {};
  const agents: RawAgent[] = [];
  const connect = async (node: string) => {
    const a = await connectRaw(h.hub.url, cred[node] ?? '');
    agents.push(a);
    a.hello();
    await a.next(isSync);
    return a;
  };

  before(async () => {
    h = await startTestHub();
    for (const u of ['site-a', 'site-b']) assert.equal((await h.api('POST', `${API}/nodeunits`, nodeUnit(u))).status, 201);
    const tok = async (unit: string) => (await h.api<{ token: string }>('POST', `${API}/jointokens`, { unit })).body.token;
    for (const [node, unit] of [['node-a1', 'site-a'], ['node-a2', 'site-a'], ['node-b', 'site-b']] as const) cred[node] = (await h.join(await tok(unit), node)).credential;
    assert.equal((await h.api('PUT', `${API}/devicemodels/thermo`, model)).status, 201);
    for (const d of [device('dev-a1', { node: 'node-a1' }), device('dev-site-a', { unit: 'site-a' }), device('dev-b', { node: 'node-b' })]) {
      const res = await h.api('PUT', `${API}/devices/${d.metadata.name}`, d);
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    for (const d of ['dev-a1', 'dev-site-a', 'dev-b']) assert.equal((await h.api('POST', `${API}/devices/${d}/credentials`)).status, 201);
  });

  after(async () => {
    for (const a of agents) a.ws.terminate();
    await h.close();
  });

  test('a node gets the devices bound to it or its unit, their model and credentials, nothing else', async () => {
    const a1 = await connect('node-a1');
    const a2 = await connect('node-a2');
    const keysOf = (a: RawAgent) => [...held(a).keys()].filter((k) => k.startsWith('Device')).sort();
    assert.deepEqual(keysOf(a1), ['Device/dev-a1', 'Device/dev-site-a', 'DeviceCredential/dev-a1', 'DeviceCredential/dev-site-a', 'DeviceModel/thermo']);
    assert.deepEqual(keysOf(a2), ['Device/dev-site-a', 'DeviceCredential/dev-site-a', 'DeviceModel/thermo']);
    // Live changes: dev-b moves onto node-a1 (it gets the device and its credential), then back.
    assert.equal((await h.api('PUT', `${API}/devices/dev-b`, device('dev-b', { node: 'node-a1' }))).status, 200);
    await waitFor(() => held(a1).has('DeviceCredential/dev-b') && held(a1).has('Device/dev-b'), { message: 'dev-b and its credential reach node-a1' });
    await h.api('POST', `${API}/devices/dev-b/credentials`);
    assert.equal((await h.api('PUT', `${API}/devices/dev-b`, device('dev-b', { node: 'node-b' }))).status, 200);
    await waitFor(() => !held(a1).has('Device/dev-b') && !held(a1).has('DeviceCredential/dev-b'), { message: 'dev-b leaves node-a1' });
    const n = a2.frames.length;
    await h.api('POST', `${API}/devices/dev-b/credentials`);
    await h.api('PUT', `${API}/devices/dev-a1`, device('dev-a1', { node: 'node-a1' }, { desired: { setpoint: 20 } }));
    await waitFor(() => (held(a1).get('Device/dev-a1') as Device | undefined)?.spec.desired?.setpoint === 20, { message: 'desired change reaches node-a1' });
    assert.ok(!a2.frames.slice(n).some((f) => isSync(f) && f.objects.some((o) => o.metadata.name === 'dev-b' || o.metadata.name === 'dev-a1')), 'node-a2 never sees dev-a1 or dev-b');
    // A model change reaches the nodes that home a device of that model.
    await h.api('PUT', `${API}/devicemodels/thermo`, { ...model, spec: { ...model.spec, description: 'v2' } });
    await waitFor(() => (held(a2).get('DeviceModel/thermo') as DeviceModel | undefined)?.spec.description === 'v2', { message: 'model change reaches node-a2' });
    a1.ws.terminate();
    a2.ws.terminate();
  });

  test('apply checks desired values against a present model; a missing model is a warning', async () => {
    const bad = async (desired: Record<string, unknown>, path: string) => {
      const res = await h.api<{ code: string; fields: { path: string }[] }>('PUT', `${API}/devices/dev-x`, { ...device('dev-x', { node: 'node-a1' }), spec: { model: 'thermo', node: 'node-a1', desired } });
      assert.equal(res.status, 422);
      assert.equal(res.body.fields[0]?.path, path);
    };
    await bad({ temperature: 3 }, '/spec/desired/temperature');
    await bad({ setpoint: 99 }, '/spec/desired/setpoint');
    await bad({ mode: 'turbo' }, '/spec/desired/mode');
    await bad({ nope: 1 }, '/spec/desired/nope');
    assert.equal((await h.api('GET', `${API}/devices/dev-x`)).status, 404, 'nothing stored');
    const both = await h.api<{ fields: { path: string }[] }>('POST', `${API}/devices`, device('dev-y', { node: 'node-a1', unit: 'site-a' }));
    assert.equal(both.status, 422);
    assert.equal(both.body.fields[0]?.path, '/spec');
    // Model applied after the device: accepted with a warning, cleared once the model exists.
    const early = await h.api<Device>('POST', `${API}/devices`, { ...device('dev-late', { node: 'node-a1' }), spec: { model: 'later', node: 'node-a1', desired: { setpoint: 10 } } });
    assert.equal(early.status, 201);
    assert.match(early.body.status?.message ?? '', /model later not found/);
    await h.api('PUT', `${API}/devicemodels/later`, { ...model, metadata: { name: 'later' } });
    await waitFor(async () => (await h.api<Device>('GET', `${API}/devices/dev-late`)).body.status?.message === undefined, { message: 'warning cleared' });
    const dup = await h.api<{ fields: { path: string }[] }>('PUT', `${API}/devicemodels/dup`, { ...model, metadata: { name: 'dup' }, spec: { properties: [...model.spec.properties, model.spec.properties[0]] } });
    assert.equal(dup.status, 422);
    assert.equal(dup.body.fields[0]?.path, '/spec/properties/3/name');
    await h.api('DELETE', `${API}/devices/dev-late`);
  });

  test('reports: twin merge, stale versions, presence, and only about devices the node may home', async () => {
    const a1 = await connect('node-a1');
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    a1.send({ type: 'report', items: [
      { seq: 1, kind: 'device-report', body: { device: 'dev-a1', reported: { temperature: { value: 20.5, timestamp: t(1) }, setpoint: { value: 19, timestamp: t(1) } }, version: 4, observedDesired: 2 } },
      { seq: 2, kind: 'device-report', body: { device: 'dev-a1', reported: { temperature: { value: 21, timestamp: t(2) } }, version: 5 } },
      { seq: 3, kind: 'device-report', body: { device: 'dev-a1', reported: { temperature: { value: -1, timestamp: t(3) } }, version: 3 } },
      { seq: 4, kind: 'device-presence', body: { device: 'dev-a1', online: true, at: t(4) } },
      { seq: 5, kind: 'device-report', body: { device: 'dev-b', reported: { temperature: { value: 99, timestamp: t(5) } } } },
      { seq: 6, kind: 'device-presence', body: { device: 'dev-b', online: true, at: t(5) } },
      { seq: 7, kind: 'device-report', body: { device: 'dev-site-a', reported: { temperature: { value: 7, timestamp: t(5) }, ghost: { value: 1, timestamp: t(5) } } } },
    ] });
    const reported = await a1.next(reportedUpTo(7));
    assert.deepEqual(reported.rejected.map((r) => [r.seq, r.code]), [[5, 'OUTPOST_FORBIDDEN'], [6, 'OUTPOST_FORBIDDEN']]);
    const d = (await h.api<Device>('GET', `${API}/devices/dev-a1`)).body;
    assert.deepEqual(d.status?.reported, { temperature: { value: 21, timestamp: t(2), version: 5, node: 'node-a1' }, setpoint: { value: 19, timestamp: t(1), version: 4, node: 'node-a1' } });
    assert.equal(d.status?.reportedVersion, 5);
    assert.equal(d.status?.observedDesired, 2);
    assert.equal(d.status?.online, true);
    assert.equal(d.status?.node, 'node-a1');
    assert.equal(d.status?.lastSeen, t(4));
    assert.equal((await h.api<Device>('GET', `${API}/devices/dev-b`)).body.status?.online, undefined, 'dev-b untouched');
    assert.deepEqual((await h.api<Device>('GET', `${API}/devices/dev-site-a`)).body.status?.reported, { temperature: { value: 7, timestamp: t(5), node: 'node-a1' } }, 'unknown property dropped');
    await waitFor(async () => /outpost_hub_devices_online 1\n/.test(await (await fetch(`${h.hub.url}/metrics`)).text()), { message: 'one device online' });
    a1.send({ type: 'report', items: [{ seq: 8, kind: 'device-presence', body: { device: 'dev-a1', online: false, at: t(6) } }] });
    await a1.next(reportedUpTo(8));
    assert.equal((await h.api<Device>('GET', `${API}/devices/dev-a1`)).body.status?.online, false);
    const metrics = await (await fetch(`${h.hub.url}/metrics`)).text();
    assert.match(metrics, /outpost_hub_device_reports_refused_total\{reason="stale-version"\} 1/);
    assert.match(metrics, /outpost_hub_device_reports_refused_total\{reason="not-home"\} 2/);
    assert.match(metrics, /outpost_hub_device_reports_refused_total\{reason="unknown-property"\} 1/);
    // Coalesced: one status write per device per frame (dev-a1 and dev-site-a in the first frame, dev-a1 in the second).
    assert.match(metrics, /outpost_hub_device_status_writes_total 3/);
    a1.ws.terminate();
  });

  test('telemetry is stored once across a re-sent batch, in order, within retention', async () => {
    const a2 = await connect('node-a2');
    const row = (seq: number) => ({ seq, kind: 'telemetry', body: { device: 'dev-site-a', timestamp: new Date().toISOString(), values: { temperature: seq } } });
    const first = Array.from({ length: 10 }, (_, i) => row(100 + i));
    a2.send({ type: 'report', items: first });
    await a2.next(reportedUpTo(109));
    // The ack was "lost": the agent re-sends the batch with more rows behind it.
    a2.send({ type: 'report', items: [...first, ...Array.from({ length: 5 }, (_, i) => row(110 + i))] });
    await a2.next(reportedUpTo(114));
    const list = (await h.api<{ items: { seq: number; values: { temperature: number } }[] }>('GET', `${API}/devices/dev-site-a/telemetry?limit=1000`)).body.items;
    assert.deepEqual(list.map((r) => r.seq), Array.from({ length: 15 }, (_, i) => 100 + i));
    const metrics = await (await fetch(`${h.hub.url}/metrics`)).text();
    assert.match(metrics, /outpost_hub_telemetry_duplicates_dropped_total 10/);
    assert.match(metrics, /outpost_hub_telemetry_rows_stored_total 15/);
    assert.equal((await h.api<{ items: unknown[] }>('GET', `${API}/devices/dev-site-a/telemetry?limit=3`)).body.items.length, 3);
    // The cursor: pages of 4 from the first stored row read all 15 once, in order.
    const paged: number[] = [];
    let cursor = '0';
    for (let page = 0; page < 10; page++) {
      const body = (await h.api<{ items: { seq: number }[]; next: string; more: boolean }>('GET', `${API}/devices/dev-site-a/telemetry?after=${cursor}&limit=4`)).body;
      paged.push(...body.items.map((r) => r.seq));
      cursor = body.next;
      if (!body.more) break;
    }
    assert.deepEqual(paged, list.map((r) => r.seq));
    const end = (await h.api<{ items: unknown[]; next: string; more: boolean }>('GET', `${API}/devices/dev-site-a/telemetry?after=${cursor}`)).body;
    assert.deepEqual([end.items, end.next, end.more], [[], cursor, false], 'past the end: nothing, same cursor');
    for (const bad of ['after=abc', 'after=-1', 'limit=0', 'limit=x']) {
      const res = await h.api<{ code: string; message: string }>('GET', `${API}/devices/dev-site-a/telemetry?${bad}`);
      assert.equal(res.status, 400, bad);
      assert.match(res.body.message, new RegExp(bad.split('=')[0]!));
    }
    // Retention by count: the device keeps its newest 4 rows.
    assert.equal((await h.api('PUT', `${API}/devices/dev-site-a`, device('dev-site-a', { unit: 'site-a' }, { telemetryRetention: { maxCount: 4 } }))).status, 200);
    // Retention is read from the hub's cache: node-a2 getting the change shows the cache has it.
    await waitFor(() => (held(a2).get('Device/dev-site-a') as Device | undefined)?.spec.telemetryRetention?.maxCount === 4, { message: 'retention change synced' });
    a2.send({ type: 'report', items: [row(115)] });
    await a2.next(reportedUpTo(115));
    const kept = (await h.api<{ items: { seq: number }[] }>('GET', `${API}/devices/dev-site-a/telemetry`)).body.items;
    assert.deepEqual(kept.map((r) => r.seq), [112, 113, 114, 115]);
    // Follow: JSON lines, the stored rows and then each new one.
    const ctrl = new AbortController();
    const res = await fetch(`${h.hub.url}${API}/devices/dev-site-a/telemetry?follow=true&limit=1`, { headers: { Authorization: `Bearer ${h.hub.adminToken}` }, signal: ctrl.signal });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (needle: string) => waitFor(async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      return text.includes(needle);
    }, { message: `follow output with ${needle}` });
    await readUntil('"seq":115');
    a2.send({ type: 'report', items: [row(116)] });
    await readUntil('"seq":116');
    assert.deepEqual(text.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq), [115, 116]);
    ctrl.abort();
    a2.ws.terminate();
  });

  test('two home agents reporting the same device at once: per-property newest by (version, time, node), nothing lost', async () => {
    for (const name of ['dev-shared-1', 'dev-shared-2']) assert.equal((await h.api('PUT', `${API}/devices/${name}`, device(name, { unit: 'site-a' }))).status, 201);
    const a1 = await connect('node-a1');
    const a2 = await connect('node-a2');
    for (const a of [a1, a2]) await waitFor(() => held(a).has('Device/dev-shared-2'), { message: 'shared devices synced' });
    const t = (s: number) => new Date(Date.UTC(2026, 0, 2, 0, 0, s)).toISOString();
    type Entry = { value: string | number; timestamp: string; version?: number };
    // What each agent reports, round by round: properties interleave, times and versions cross.
    const fromA1 = (r: number): Record<string, Entry> => ({ setpoint: { value: 10 + r, timestamp: t(r), version: 100 + r }, mode: { value: 'comfort', timestamp: t(50) } });
    const fromA2 = (r: number): Record<string, Entry> => ({ temperature: { value: r, timestamp: t(r) }, setpoint: { value: 5 + r / 10, timestamp: t(40 + r), version: 90 + r }, mode: { value: 'eco', timestamp: t(50) } });
    const rounds = 15;
    let seq1 = 1000;
    let seq2 = 1000;
    const send = (a: RawAgent, dev: string, reported: Record<string, Entry>) => {
      const seq = a === a1 ? ++seq1 : ++seq2;
      a.send({ type: 'report', items: [{ seq, kind: 'device-report', body: { device: dev, reported } }] });
      return a.next(reportedUpTo(seq), 10_000);
    };
    for (let r = 0; r < rounds; r++) {
      // Same reports, opposite orders, for the two devices; all four frames in flight at once.
      await Promise.all([send(a1, 'dev-shared-1', fromA1(r)), send(a2, 'dev-shared-1', fromA2(r)), send(a2, 'dev-shared-2', fromA2(r)), send(a1, 'dev-shared-2', fromA1(r))]);
    }
    const last = rounds - 1;
    const expected = {
      temperature: { value: last, timestamp: t(last), node: 'node-a2' }, // only node-a2 reports it: kept
      setpoint: { value: 10 + last, timestamp: t(last), version: 100 + last, node: 'node-a1' }, // higher version beats newer time
      mode: { value: 'eco', timestamp: t(50), node: 'node-a2' }, // same time, no version: node name decides
    };
    for (const name of ['dev-shared-1', 'dev-shared-2']) {
      assert.deepEqual((await h.api<Device>('GET', `${API}/devices/${name}`)).body.status?.reported, expected, name);
    }
    // Presence: the newest by time wins, whichever arrives last (the device moved from a2 to a1).
    a1.send({ type: 'report', items: [{ seq: ++seq1, kind: 'device-presence', body: { device: 'dev-shared-1', online: true, at: t(100) } }] });
    await a1.next(reportedUpTo(seq1));
    a2.send({ type: 'report', items: [{ seq: ++seq2, kind: 'device-presence', body: { device: 'dev-shared-1', online: false, at: t(99) } }] });
    await a2.next(reportedUpTo(seq2));
    const shared = (await h.api<Device>('GET', `${API}/devices/dev-shared-1`)).body.status;
    assert.equal(shared?.online, true);
    assert.equal(shared?.presenceAt, t(100));
    a1.ws.terminate();
    a2.ws.terminate();
  });

  test('twin convergence lag: a desired change acknowledged by the device is observed once', async () => {
    const histogram = async () => {
      const text = await (await fetch(`${h.hub.url}/metrics`)).text();
      return Number(/^outpost_hub_twin_convergence_seconds_count (\d+)/m.exec(text)?.[1] ?? -1);
    };
    const before = await histogram();
    assert.ok(before >= 0, 'the histogram is exported');
    const a1 = await connect('node-a1');
    const changed = (await h.api<Device>('PUT', `${API}/devices/dev-a1`, device('dev-a1', { node: 'node-a1' }, { desired: { setpoint: 17 } }))).body;
    const generation = changed.metadata.generation ?? 0;
    await waitFor(() => (held(a1).get('Device/dev-a1') as Device | undefined)?.metadata.generation === generation, { message: 'desired change synced' });
    const ack = (seq: number, observed: number) => {
      a1.send({ type: 'report', items: [{ seq, kind: 'device-report', body: { device: 'dev-a1', reported: {}, observedDesired: observed } }] });
      return a1.next(reportedUpTo(seq));
    };
    await ack(2001, generation - 1);
    assert.equal(await histogram(), before, 'an older version acknowledged is not convergence');
    await ack(2002, generation);
    assert.equal(await histogram(), before + 1);
    assert.equal((await h.api<Device>('GET', `${API}/devices/dev-a1`)).body.status?.observedDesired, generation);
    await ack(2003, generation);
    assert.equal(await histogram(), before + 1, 'observed once');
    a1.ws.terminate();
  });

  test('telemetry about another node\'s device is refused, not stored', async () => {
    const b = await connect('node-b');
    b.send({ type: 'report', items: [{ seq: 1, kind: 'telemetry', body: { device: 'dev-a1', timestamp: new Date().toISOString(), values: { temperature: 1 } } }, { seq: 2, kind: 'telemetry', body: { device: 'nope', timestamp: new Date().toISOString(), values: {} } }] });
    const r = await b.next(reportedUpTo(2));
    assert.deepEqual(r.rejected.map((x) => [x.seq, x.code]), [[1, 'OUTPOST_FORBIDDEN'], [2, 'OUTPOST_NOT_FOUND']]);
    assert.deepEqual((await h.api<{ items: unknown[] }>('GET', `${API}/devices/dev-a1/telemetry`)).body.items, []);
    b.ws.terminate();
  });

  test('credentials: the password is shown once, stored as a scrypt hash, rotated, deleted with the device', async () => {
    await h.api('PUT', `${API}/devices/dev-c`, device('dev-c', { node: 'node-a1' }));
    const first = await h.api<{ username: string; password: string }>('POST', `${API}/devices/dev-c/credentials`);
    assert.equal(first.status, 201);
    assert.equal(first.body.username, 'dev-c');
    const stored = (await h.api<DeviceCredential>('GET', `${API}/devicecredentials/dev-c`)).body;
    assert.ok(!JSON.stringify(stored).includes(first.body.password), 'never stored in clear');
    assert.equal(await verifyPassword(first.body.password, stored.spec.passwordHash), true);
    const second = await h.api<{ password: string }>('POST', `${API}/devices/dev-c/credentials`);
    const rotated = (await h.api<DeviceCredential>('GET', `${API}/devicecredentials/dev-c`)).body;
    assert.equal(await verifyPassword(first.body.password, rotated.spec.passwordHash), false, 'the old password no longer works');
    assert.equal(await verifyPassword(second.body.password, rotated.spec.passwordHash), true);
    assert.equal((await h.api('POST', `${API}/devices/nope/credentials`)).status, 404);
    assert.equal((await h.api('POST', `${API}/devices/dev-c/credentials`, undefined, { token: cred['node-a1'] ?? '' })).status, 401, 'admin only');
    assert.equal((await h.api('PUT', `${API}/devicecredentials/dev-c`, rotated)).status, 405, 'hub-written');
    await h.api('DELETE', `${API}/devices/dev-c`);
    await waitFor(async () => (await h.api('GET', `${API}/devicecredentials/dev-c`)).status === 404, { message: 'credential deleted with its device' });
    assert.equal((await h.api('GET', `${API}/devices/dev-c/telemetry`)).status, 404);
  });

  test('CLI: get, describe, set, credentials, telemetry', async () => {
    const env = { OUTPOST_SERVER: h.hub.url, OUTPOST_TOKEN: h.hub.adminToken };
    const get = await runCli(['get', 'devices'], env);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /NAME\s+MODEL\s+HOME\s+ONLINE\s+LAST-SEEN\s+DESIRED\/OBSERVED/);
    assert.match(get.stdout, /dev-a1\s+thermo\s+node\/node-a1\s+no\s+\S+\s+3\/3/, 'the convergence test set version 3 and acknowledged it');
    assert.match(get.stdout, /dev-site-a\s+thermo\s+unit\/site-a/);
    const models = await runCli(['get', 'models'], env);
    assert.match(models.stdout, /thermo\s+3\s+setpoint,mode/);

    const set = await runCli(['device', 'set', 'dev-a1', 'setpoint=22.5', 'mode=eco'], env);
    assert.equal(set.code, 0, set.stderr);
    const d = (await h.api<Device>('GET', `${API}/devices/dev-a1`)).body;
    assert.deepEqual(d.spec.desired, { setpoint: 22.5, mode: 'eco' });
    for (const [arg, why] of [['temperature=3', /ReadOnly/], ['setpoint=warm', /is a number/], ['mode=turbo', /one of eco, comfort/], ['ghost=1', /no such property/], ['setpoint', /prop=value/]] as const) {
      const r = await runCli(['device', 'set', 'dev-a1', arg], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, why);
    }
    const range = await runCli(['device', 'set', 'dev-a1', 'setpoint=99'], env);
    assert.equal(range.code, 1);
    assert.match(range.stderr, /\/spec\/desired\/setpoint/, 'the server refuses what the client lets through');
    assert.equal((await h.api<Device>('GET', `${API}/devices/dev-a1`)).body.metadata.generation, d.metadata.generation, 'nothing changed');

    // -f prints the stored rows, then each new one.
    const follow = spawn(process.execPath, [join(repoRoot, 'bin/outpost.js'), 'device', 'telemetry', 'dev-site-a', '-f', '--limit', '1', '-o', 'json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follow.stdout.on('data', (c: Buffer) => { followed += c.toString(); });
    try {
      await waitFor(() => followed.includes('"seq":116'), { timeoutMs: 15_000, message: 'follow prints the stored row' });
      const a2 = await connect('node-a2');
      a2.send({ type: 'report', items: [{ seq: 117, kind: 'telemetry', body: { device: 'dev-site-a', timestamp: new Date().toISOString(), values: { temperature: 117 } } }] });
      await waitFor(() => followed.includes('"seq":117'), { timeoutMs: 15_000, message: 'follow prints the new row' });
      a2.ws.terminate();
    } finally {
      follow.kill('SIGKILL');
    }

    const creds = await runCli(['device', 'credentials', 'dev-a1'], env);
    assert.equal(creds.code, 0, creds.stderr);
    const [userLine, passLine] = creds.stdout.trim().split('\n');
    assert.equal(userLine, 'username: dev-a1');
    const password = passLine?.replace(/^password: /, '') ?? '';
    const hash = (await h.api<DeviceCredential>('GET', `${API}/devicecredentials/dev-a1`)).body.spec.passwordHash;
    assert.equal(await verifyPassword(password, hash), true);

    const tel = await runCli(['device', 'telemetry', 'dev-site-a', '--since', '1h'], env);
    assert.equal(tel.code, 0, tel.stderr);
    assert.match(tel.stdout, /TIME\s+NODE\s+SEQ\s+VALUES/);
    assert.match(tel.stdout, /node-a2\s+116\s+temperature=116/);
    // --since reads every row page by page with the cursor (pages of 5 here, 12 rows).
    const a1 = await connect('node-a1');
    a1.send({ type: 'report', items: Array.from({ length: 12 }, (_, i) => ({ seq: 3001 + i, kind: 'telemetry', body: { device: 'dev-a1', timestamp: new Date().toISOString(), values: { temperature: i } } })) });
    await a1.next(reportedUpTo(3012));
    a1.ws.terminate();
    const lines: string[] = [];
    await printTelemetry(new HubClient({ server: h.hub.url, token: h.hub.adminToken, source: 'test' }), 'dev-a1', { since: '1h', output: 'json', pageSize: 5 }, (l) => lines.push(l));
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { seq: number }).seq), Array.from({ length: 12 }, (_, i) => 3001 + i));
    const badSince = await runCli(['device', 'telemetry', 'dev-site-a', '--since', 'soon'], env);
    assert.equal(badSince.code, 1);
    assert.match(badSince.stderr, /not a duration/);

    const describe = await runCli(['describe', 'device', 'dev-a1'], env);
    assert.equal(describe.code, 0, describe.stderr);
    assert.match(describe.stdout, /PROPERTY\s+REPORTED\s+UNIT\s+DESIRED\s+ACCESS/);
    assert.match(describe.stdout, /temperature\s+21\s+°C\s+-\s+ReadOnly/);
    assert.match(describe.stdout, /setpoint\s+19\s+°C\s+22.5\s+ReadWrite/);
    assert.match(describe.stdout, /Telemetry \(last 10\):/);
  });
});

describe('telemetry across a hub restart', () => {
  test('a batch re-sent to a restarted hub is not stored twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-devhub-'));
    const dataDir = join(dir, 'hub');
    const start = () => startHub({ dataDir, host: '127.0.0.1', port: 0, pingIntervalMs: 500, readDeadlineMs: 3000 }, silentLogger());
    const call = async <T>(hub: RunningHub, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${hub.url}${path}`, { method, headers: { Authorization: `Bearer ${hub.adminToken}`, 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return (await res.json()) as T;
    };
    let hub = await start();
    try {
      await call(hub, 'POST', `${API}/nodeunits`, nodeUnit('site-a'));
      await call(hub, 'PUT', `${API}/devicemodels/thermo`, model);
      await call(hub, 'PUT', `${API}/devices/d1`, device('d1', { node: 'n1' }));
      const { token } = await call<{ token: string }>(hub, 'POST', `${API}/jointokens`, { unit: 'site-a' });
      const joined = await fetch(`${hub.url}/agent/v1/join`, { method: 'POST', body: JSON.stringify({ token, node: 'n1' }), headers: { 'Content-Type': 'application/json' } });
      const { credential } = (await joined.json()) as { credential: string };
      const items = Array.from({ length: 20 }, (_, i) => ({ seq: i + 1, kind: 'telemetry', body: { device: 'd1', timestamp: new Date().toISOString(), values: { temperature: i } } }));
      const send = async (batch: unknown[], ackSeq: number) => {
        const a = await connectRaw(hub.url, credential);
        a.hello();
        await a.next(isSync);
        a.send({ type: 'report', items: batch });
        await a.next(reportedUpTo(ackSeq));
        a.ws.terminate();
      };
      await send(items.slice(0, 15), 15);
      await hub.stop();
      hub = await start();
      await send(items, 20); // the agent never saw the ack of the first 15
      const stored = await call<{ items: { seq: number }[] }>(hub, 'GET', `${API}/devices/d1/telemetry`);
      assert.deepEqual(stored.items.map((r) => r.seq), items.map((i) => i.seq));
      // A device deleted behind the hub's back (a stop between the two deletes): the next start
      // removes its credential and telemetry.
      await call(hub, 'POST', `${API}/devices/d1/credentials`);
      await hub.stop();
      const store = SqliteStore.open({ path: join(dataDir, 'store.db') });
      await store.delete('Device', 'd1');
      await store.close();
      hub = await start();
      await waitFor(async () => (await fetch(`${hub.url}${API}/devicecredentials/d1`, { headers: { Authorization: `Bearer ${hub.adminToken}` } })).status === 404, { message: 'orphan credential removed' });
      await hub.stop();
      const telemetry = new TelemetryStore(join(dataDir, 'telemetry.db'));
      try {
        assert.equal(telemetry.count('d1'), 0, 'orphan telemetry removed');
      } finally {
        telemetry.close();
        hub = await start();
      }
    } finally {
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
