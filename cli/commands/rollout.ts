import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { AnyObject, AppRevision, EdgeApp, EdgeConfig, NodeUnit } from '../../shared/api/index.js';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import { APP_LABEL, revisionHash } from '../../cloud-hub/scheduler/revisions.js';
import { configRevisionOf } from '../../cloud-hub/configs/config-revision.js';
import { API_PREFIX, type HubClient } from '../client.js';
import { age, table } from '../format.js';
import { rolloutVerdict, unitLine } from './rollout-progress.js';

const appPath = (name: string) => `${API_PREFIX}/edgeapps/${encodeURIComponent(name)}`;

/** `outpost rollout status|pause|resume|undo|history APP`. */
export function registerRollout(program: Command, client: () => HubClient): void {
  const print = (text: string): void => { process.stdout.write(`${text}\n`); };
  const rollout = program.command('rollout').description('follow, pause, resume and undo rolling updates of an app');
  rollout
    .command('status <app>')
    .description('follow the rollout per unit until every unit is Complete (exit 0), one Failed (1) or the timeout (2)')
    .option('--timeout <duration>', 'give up after this long (exit 2)', '10m')
    .action(async (app: string, o: { timeout: string }) => {
      let timeoutMs: number;
      try {
        timeoutMs = parseDuration(o.timeout, '--timeout');
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      process.exitCode = await followRollout(client(), app, timeoutMs, process.stdout.isTTY === true);
    });
  rollout.command('pause <app>').description('take no further update steps (spec.rollout.paused)').action(async (app: string) => print(await setPaused(client(), app, true)));
  rollout.command('resume <app>').description('continue a paused rollout').action(async (app: string) => print(await setPaused(client(), app, false)));
  rollout
    .command('undo <app>')
    .description('roll back to the previous revision (or --to-revision N): its template and overrides become the app\'s again')
    .option('--to-revision <n>', 'the revision to return to (see rollout history)')
    .action(async (app: string, o: { toRevision?: string }) => print(await undo(client(), app, o.toRevision)));
  rollout.command('history <app>').description('the kept revisions of an app').action(async (app: string) => print(await history(client(), app)));
}

/** Read-modify-write of an app's spec with the resourceVersion as precondition (retried on conflict). */
async function updateApp(client: HubClient, name: string, mutate: (app: EdgeApp) => string | undefined): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const app = await client.request<EdgeApp>('GET', appPath(name));
    const skipped = mutate(app);
    if (skipped !== undefined) return skipped;
    const { status: _status, ...body } = app;
    try {
      await client.request<AnyObject>('PUT', appPath(name), body);
      return '';
    } catch (err) {
      if (isOutpostError(err, 'CONFLICT') && attempt < 5) continue;
      throw err;
    }
  }
}

async function setPaused(client: HubClient, name: string, paused: boolean): Promise<string> {
  const r = await updateApp(client, name, (app) => {
    if ((app.spec.rollout?.paused ?? false) === paused) return `edgeapp/${name} is already ${paused ? 'paused' : 'not paused'}`;
    const { paused: _p, ...rest } = app.spec.rollout ?? {};
    app.spec.rollout = paused ? { ...rest, paused: true } : rest;
    if (Object.keys(app.spec.rollout).length === 0) delete app.spec.rollout;
    return undefined;
  });
  return r || `edgeapp/${name} ${paused ? 'paused' : 'resumed'}`;
}

async function listRevisions(client: HubClient, app: string): Promise<AppRevision[]> {
  const list = await client.request<{ items: AppRevision[] }>('GET', `${API_PREFIX}/apprevisions?labelSelector=${encodeURIComponent(`${APP_LABEL}=${app}`)}`);
  return list.items.filter((r) => r.spec.app === app).sort((a, b) => a.spec.revision - b.spec.revision);
}

async function undo(client: HubClient, name: string, toRevision: string | undefined): Promise<string> {
  if (toRevision !== undefined && !/^[1-9][0-9]{0,8}$/.test(toRevision)) throw new OutpostError('BAD_REQUEST', `--to-revision "${toRevision}": a revision number (see outpost rollout history ${name})`);
  const revisions = await listRevisions(client, name);
  let target: AppRevision | undefined;
  const r = await updateApp(client, name, (app) => {
    const current = app.status?.revision;
    if (toRevision !== undefined) {
      target = revisions.find((x) => x.spec.revision === Number(toRevision));
      if (!target) throw new OutpostError('NOT_FOUND', `revision ${toRevision} of app ${name} is not kept; kept: ${revisions.map((x) => x.spec.revision).join(', ') || 'none'}`);
    } else {
      target = revisions.filter((x) => current === undefined || x.spec.revision < current).at(-1);
      if (!target) throw new OutpostError('NOT_FOUND', `app ${name} has no revision before ${current ?? 'the current one'} to go back to`);
    }
    if (revisionHash(app) === target.spec.hash) return `edgeapp/${name} skipped: its spec already is revision ${target.spec.revision}`;
    app.spec.template = structuredClone(target.spec.template);
    if (target.spec.overrides) app.spec.overrides = structuredClone(target.spec.overrides);
    else delete app.spec.overrides;
    return undefined;
  });
  return r || `edgeapp/${name} rolled back to the content of revision ${target?.spec.revision ?? '?'} (it becomes a new revision; follow it with: outpost rollout status ${name})`;
}

async function history(client: HubClient, name: string): Promise<string> {
  const app = await client.request<EdgeApp>('GET', appPath(name));
  const revisions = await listRevisions(client, name);
  if (revisions.length === 0) return `No revisions of app ${name} found.`;
  return table(['REVISION', 'HASH', 'CREATED', 'AGE', 'CURRENT'], revisions.map((r) => [
    String(r.spec.revision), r.spec.hash, r.metadata.creationTimestamp ?? '-', age(r.metadata.creationTimestamp), r.spec.revision === app.status?.revision ? '*' : '',
  ]));
}

/** The newest resourceVersion of the configs the app uses now (what the hub must have seen). */
async function currentConfigRevision(client: HubClient, app: EdgeApp): Promise<number> {
  const [configs, units] = await Promise.all([
    client.request<{ items: EdgeConfig[] }>('GET', `${API_PREFIX}/edgeconfigs`),
    client.request<{ items: NodeUnit[] }>('GET', `${API_PREFIX}/nodeunits`),
  ]);
  const byName = new Map(configs.items.map((c) => [c.metadata.name, c]));
  const selected = units.items.filter((u) => app.status?.units?.some((s) => s.unit === u.metadata.name));
  return configRevisionOf(app, selected, (n) => byName.get(n));
}

/**
 * Follows the app through the hub's watch API and shows per-unit progress: bars on a terminal,
 * one plain line per change otherwise. Returns the exit code.
 */
async function followRollout(client: HubClient, name: string, timeoutMs: number, tty: boolean): Promise<number> {
  const first = await client.request<EdgeApp>('GET', appPath(name)); // a clear NOT_FOUND before watching
  const configRevision = await currentConfigRevision(client, first);
  const view = tty ? new BarView() : new LineView();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let outcome: { code: number; text: string } | undefined;
  try {
    for (let attempt = 0; attempt < 20 && !outcome && !abort.signal.aborted; attempt++) {
      const res = await client.raw('GET', `${API_PREFIX}/edgeapps?watch=true&fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`, undefined, abort.signal).catch((err: unknown) => {
        if (abort.signal.aborted) return undefined;
        throw err;
      });
      if (!res) break;
      if (!res.ok || !res.body) throw new OutpostError('UNAVAILABLE', `watching app ${name}: the hub answered ${res.status}`);
      outcome = await readEvents(res.body, abort.signal, (type, app) => {
        if (type === 'DELETED') return { code: 1, text: `app ${name} was deleted` };
        view.show(app);
        const v = rolloutVerdict(app, configRevision);
        if (v.state === 'complete') return { code: 0, text: `rollout of ${name} complete: revision ${app.status?.revision ?? '-'} in ${app.status?.units?.length ?? 0} unit(s)` };
        if (v.state === 'failed') return { code: 1, text: `rollout of ${name} failed in unit ${v.units.map((u) => `${u.unit}${u.message ? ` (${u.message})` : ''}`).join(', ')}` };
        return undefined;
      });
      if (!outcome && !abort.signal.aborted) await new Promise((r) => setTimeout(r, 500)); // the hub ended the watch: watch again
    }
  } finally {
    clearTimeout(timer);
    view.stop();
  }
  if (!outcome) {
    process.stderr.write(`error: rollout of ${name} not finished after ${timeoutMs / 1000}s\n`);
    return 2;
  }
  (outcome.code === 0 ? process.stdout : process.stderr).write(`${outcome.code === 0 ? '' : 'error: '}${outcome.text}\n`);
  return outcome.code;
}

/** Reads JSON lines until `onEvent` returns an outcome, the stream ends, or the signal fires. */
async function readEvents(body: ReadableStream<Uint8Array>, signal: AbortSignal, onEvent: (type: string, app: EdgeApp) => { code: number; text: string } | undefined): Promise<{ code: number; text: string } | undefined> {
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of body) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const e = JSON.parse(line) as { type: string; object: EdgeApp };
        const out = onEvent(e.type, e.object);
        if (out) return out;
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
  return undefined;
}

interface View {
  show(app: EdgeApp): void;
  stop(): void;
}

/** Not a terminal: one line per unit whose progress changed. */
class LineView implements View {
  private readonly last = new Map<string, string>();
  show(app: EdgeApp): void {
    for (const u of app.status?.units ?? []) {
      const line = unitLine(u);
      if (this.last.get(u.unit) === line) continue;
      this.last.set(u.unit, line);
      process.stdout.write(`${line}\n`);
    }
  }

  stop(): void {}
}

/** A terminal: one bar per unit, updated/desired, with ready count and phase. */
class BarView implements View {
  private readonly multi = new cliProgress.MultiBar({
    format: '{unit} [{bar}] {value}/{total} updated | {ready} ready | {phase}',
    hideCursor: true, clearOnComplete: false, stopOnComplete: false, stream: process.stdout, fps: 10,
  }, cliProgress.Presets.shades_classic);

  private readonly bars = new Map<string, cliProgress.SingleBar>();
  show(app: EdgeApp): void {
    const units = app.status?.units ?? [];
    const width = Math.max(...units.map((u) => u.unit.length), 4);
    for (const u of units) {
      const payload = { unit: u.unit.padEnd(width), ready: u.ready, phase: u.rollout ?? 'Pending' };
      const bar = this.bars.get(u.unit);
      if (!bar) this.bars.set(u.unit, this.multi.create(u.desired, u.updated, payload));
      else {
        bar.setTotal(u.desired);
        bar.update(u.updated, payload);
      }
    }
  }

  stop(): void {
    this.multi.stop();
  }
}
