import type { IncomingMessage, ServerResponse } from 'node:http';
import { validateObject, type AnyObject, type Device, type DeviceModel, type KindInfo } from '../../shared/api/index.js';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError } from '../../shared/errors.js';
import { readObjectBody, sendJson } from '../api/http.js';
import type { Store } from '../store/store.js';
import { rotateCredential } from './credentials.js';
import { syncModelWarning } from './model-message.js';
import { desiredProblems, modelProblems } from './property-check.js';
import type { TelemetryStore } from './telemetry-store.js';

export interface DeviceApiDeps {
  store: Store;
  telemetry: TelemetryStore;
}

/**
 * The device routes of the API: apply of Devices and DeviceModels with the model's rules,
 * `POST devices/{name}/credentials`, `GET devices/{name}/telemetry`. Returns false for requests
 * it leaves to the generic resource handler (reads, deletes, status).
 */
export async function handleDeviceRoute(
  deps: DeviceApiDeps, req: IncomingMessage, res: ServerResponse, info: KindInfo, name: string | undefined, sub: string | undefined, query: URLSearchParams,
): Promise<boolean> {
  if (info.kind !== 'Device' && info.kind !== 'DeviceModel') return false;
  const method = req.method ?? 'GET';
  if (info.kind === 'Device' && name !== undefined && sub === 'credentials') {
    if (method !== 'POST') throw new OutpostError('METHOD_NOT_ALLOWED', 'use POST to create or rotate a device credential');
    const { username, password } = await rotateCredential(deps.store, name);
    sendJson(res, 201, { device: name, username, password });
    return true;
  }
  if (info.kind === 'Device' && name !== undefined && sub === 'telemetry') {
    if (method !== 'GET') throw new OutpostError('METHOD_NOT_ALLOWED', 'telemetry is read-only');
    if (!(await deps.store.get('Device', name))) throw new OutpostError('NOT_FOUND', `device "${name}" not found`);
    await serveTelemetry(deps.telemetry, req, res, name, query);
    return true;
  }
  if (sub !== undefined) return false;
  if ((method === 'PUT' && name !== undefined) || (method === 'POST' && name === undefined)) {
    await apply(deps.store, req, res, info, name);
    return true;
  }
  return false;
}

async function apply(store: Store, req: IncomingMessage, res: ServerResponse, info: KindInfo, pathName: string | undefined): Promise<void> {
  const obj = validateObject(await readObjectBody(req));
  if (obj.kind !== info.kind) throw new OutpostError('BAD_REQUEST', `body is a ${obj.kind}, but the path is for ${info.plural}`);
  if (pathName !== undefined && obj.metadata.name !== pathName) throw new OutpostError('BAD_REQUEST', `metadata.name "${obj.metadata.name}" does not match the name in the path "${pathName}"`);
  const { status: _ignored, ...body } = obj;
  const problems = info.kind === 'DeviceModel' ? modelProblems(obj as DeviceModel) : await deviceProblems(store, obj as Device);
  if (problems.length > 0) {
    throw new OutpostError('INVALID', `${info.kind} "${obj.metadata.name}" is invalid: ${problems[0]!.path}: ${problems[0]!.message}`, { fields: problems.slice(0, 20) });
  }
  const existing = await store.get(info.kind, obj.metadata.name);
  let stored: AnyObject;
  let code = 200;
  if (pathName === undefined || !existing) {
    if (pathName !== undefined && obj.metadata.resourceVersion) throw new OutpostError('NOT_FOUND', `${info.singular} "${obj.metadata.name}" not found`);
    stored = await store.create(body as AnyObject);
    code = 201;
  } else {
    const opts = obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {};
    stored = await store.update({ ...body, metadata: { ...obj.metadata, resourceVersion: obj.metadata.resourceVersion ?? existing.metadata.resourceVersion } } as AnyObject, opts);
  }
  if (info.kind === 'Device') stored = (await syncModelWarning(store, stored.metadata.name)) ?? stored;
  sendJson(res, code, stored);
}

/** A present model is enforced; a missing one is accepted (the device shows a warning until it exists). */
async function deviceProblems(store: Store, device: Device) {
  const model = (await store.get('DeviceModel', device.spec.model)) as DeviceModel | undefined;
  return model ? desiredProblems(device, model) : [];
}

/** A cursor from the query (`after`): the decimal id of the last row a client has read. */
function cursorOf(query: URLSearchParams): number | undefined {
  const after = query.get('after');
  if (after === null) return undefined;
  if (!/^\d{1,15}$/.test(after)) throw new OutpostError('BAD_REQUEST', `after must be a cursor from a previous answer's "next" (digits), not "${after.slice(0, 64)}"`);
  return Number(after);
}

/**
 * `?since=10m&limit=N`: `{"items", "next", "more"}`, the newest `limit` rows, oldest first.
 * `?after=<cursor>`: the oldest `limit` rows after the cursor (`after=0`: from the first stored),
 * so following `next` while `more` reads every stored row once, in order.
 * `?follow=true`: JSON lines, the matching rows first (from the cursor when given), then each new
 * row as it is stored, until the client disconnects.
 */
async function serveTelemetry(telemetry: TelemetryStore, req: IncomingMessage, res: ServerResponse, device: string, query: URLSearchParams): Promise<void> {
  const since = query.get('since');
  const limitText = query.get('limit');
  if (limitText !== null && (!/^\d{1,9}$/.test(limitText) || Number(limitText) < 1)) throw new OutpostError('BAD_REQUEST', `limit must be a positive number, not "${limitText.slice(0, 64)}"`);
  const after = cursorOf(query);
  const filter = {
    ...(since ? { sinceMs: Date.now() - parseDuration(since, 'since') } : {}),
    ...(limitText !== null ? { limit: Number(limitText) } : {}),
  };
  const follow = query.get('follow');
  if (follow !== 'true' && follow !== '1') {
    let rows: ReturnType<TelemetryStore['list']>;
    let more = false;
    if (after === undefined) {
      rows = telemetry.list(device, filter);
    } else {
      ({ rows, more } = telemetry.page(device, { ...filter, afterId: after }));
    }
    const next = rows.at(-1)?.id ?? after ?? telemetry.lastId(device);
    sendJson(res, 200, { items: rows.map(({ id: _id, ...r }) => r), next: String(next), more });
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store' });
  let lastId = after ?? 0;
  const write = (list: ReturnType<TelemetryStore['list']>) => {
    for (const { id, ...r } of list) {
      lastId = Math.max(lastId, id);
      res.write(`${JSON.stringify(r)}\n`);
    }
  };
  if (after === undefined) {
    const rows = telemetry.list(device, filter);
    write(rows);
    if (rows.length === 0) lastId = telemetry.lastId(device);
  }
  await new Promise<void>((resolve) => {
    let busy = false;
    const pump = () => {
      // Never queue unbounded output for a slow reader: catch up after it drained.
      if (busy || res.destroyed) return;
      if (res.writableNeedDrain) { busy = true; res.once('drain', () => { busy = false; pump(); }); return; }
      for (let i = 0; i < 100 && !res.writableNeedDrain; i++) {
        const batch = telemetry.list(device, { afterId: lastId, limit: 1000, ...(filter.sinceMs !== undefined ? { sinceMs: filter.sinceMs } : {}) });
        write(batch);
        if (batch.length < 1000) return;
      }
      // More than 100 batches behind: go on in the next turn, letting other requests run.
      setImmediate(pump);
    };
    const stop = telemetry.onAppend((d) => { if (d === device) pump(); });
    const done = () => { stop(); resolve(); };
    req.on('close', done);
    res.on('close', done);
    if (after !== undefined) pump();
  });
}
