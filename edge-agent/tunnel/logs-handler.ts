import { join } from 'node:path';
import { OutpostError } from '../../shared/errors.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import type { StreamHandler } from './agent-tunnel.js';
import { fileSize, lastLinesOffset, mtimeMs, readRange } from './log-tail.js';
import type { RunBoundaries } from './run-boundaries.js';
import type { TunnelTargets } from './tunnel-targets.js';

export interface LogsHandlerOptions {
  /** `<logDir>/<instance>/current.log` and rotated `current.log.N` (both runtimes write there). */
  logDir: string;
  /** How often a follow checks for new output, ms. Default 200. */
  pollMs?: number;
}

/** Bytes read from a file per write to the stream (the stream's credit paces the rest). */
const CHUNK = 256 * 1024;
/** The most a --tail reads back through rotated files. */
const MAX_TAIL_SCAN = 64 * 1024 * 1024;
const MAX_ROTATED = 100;

interface LogParams {
  follow: boolean;
  tail: number | undefined;
  sinceSeconds: number | undefined;
  previous: boolean;
}

function logParams(p: Record<string, unknown>): LogParams {
  const int = (k: string): number | undefined => {
    const v = p[k];
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || (v as number) < 0) throw new OutpostError('BAD_REQUEST', `logs ${k} must be a non-negative integer`);
    return v as number;
  };
  return { follow: p.follow === true, tail: int('tail'), sinceSeconds: int('sinceSeconds'), previous: p.previous === true };
}

/**
 * logs streams: an instance's log files (oldest rotated first, then current.log), optionally only
 * the last `tail` lines, only files written within `sinceSeconds` (the granularity is a file: lines
 * carry no timestamps), or the output before the current run (`previous`); `follow` keeps reading
 * current.log as it grows, across restarts of the instance (same file) and copy-truncate rotation.
 */
export function logsHandler(targets: TunnelTargets, runs: RunBoundaries, options: LogsHandlerOptions): StreamHandler {
  const pollMs = options.pollMs ?? 200;
  return (open, stream) => {
    const params = logParams(open.params);
    // Nothing is read from a logs stream: discard input so the stream closes once both sides ended.
    stream.resume();
    const { instance } = targets.instance(open.target.instance);
    const current = join(options.logDir, instance.metadata.name, 'current.log');
    if (params.previous) {
      const range = runs.previousRun(instance.metadata.name, fileSize(current) ?? 0);
      if (!range) throw new OutpostError('NOT_FOUND', `no previous run of ${instance.metadata.name} is recorded since the agent started`);
      void send(stream, [readRange(current, range.from, range.to)], params.tail).then(() => stream.end());
      return;
    }
    void run(stream, current, params, pollMs);
  };
}

async function run(stream: TunnelStream, current: string, params: LogParams, pollMs: number): Promise<void> {
  const files: string[] = [];
  for (let n = MAX_ROTATED; n >= 1; n--) if (fileSize(`${current}.${n}`) !== undefined) files.push(`${current}.${n}`);
  files.push(current);
  const since = params.sinceSeconds === undefined ? 0 : Date.now() - params.sinceSeconds * 1000;
  let pos = fileSize(current) ?? 0;
  const chunks: Buffer[] = [];
  let scanned = 0;
  for (const f of [...files].reverse()) {
    if ((mtimeMs(f) ?? 0) < since) break;
    const end = f === current ? pos : fileSize(f) ?? 0;
    const buf = readRange(f, 0, Math.min(end, MAX_TAIL_SCAN - scanned));
    scanned += buf.length;
    chunks.unshift(buf);
    if (params.tail !== undefined && countLines(chunks) >= params.tail) break;
    if (scanned >= MAX_TAIL_SCAN) break;
  }
  if (!(await send(stream, chunks, params.tail))) return;
  if (!params.follow) {
    stream.end();
    return;
  }
  while (!stream.destroyed && !stream.writableEnded) {
    await new Promise((r) => setTimeout(r, pollMs));
    const size = fileSize(current);
    if (size === undefined) continue;
    if (size < pos) {
      // Rotated (copy then truncate): what we had not read yet is at the end of current.log.1.
      const rotatedSize = fileSize(`${current}.1`) ?? 0;
      if (!(await send(stream, [readRange(`${current}.1`, pos, rotatedSize)], undefined))) return;
      pos = 0;
    }
    while (pos < size) {
      const end = Math.min(size, pos + CHUNK);
      if (!(await send(stream, [readRange(current, pos, end)], undefined))) return;
      pos = end;
    }
  }
}

function countLines(chunks: Buffer[]): number {
  let n = 0;
  for (const c of chunks) for (let i = c.indexOf(0x0a); i !== -1; i = c.indexOf(0x0a, i + 1)) n++;
  return n;
}

/** Writes the chunks (only their last `tail` lines) with backpressure; false when the stream is gone. */
async function send(stream: TunnelStream, chunks: Buffer[], tail: number | undefined): Promise<boolean> {
  let all = Buffer.concat(chunks);
  if (tail !== undefined) all = all.subarray(lastLinesOffset(all, tail));
  for (let i = 0; i < all.length; i += CHUNK) {
    if (stream.destroyed || stream.writableEnded) return false;
    if (!stream.write(all.subarray(i, i + CHUNK))) {
      await new Promise<void>((resolve) => {
        const done = () => { stream.off('drain', done); stream.off('close', done); resolve(); };
        stream.on('drain', done);
        stream.on('close', done);
      });
    }
  }
  return !stream.destroyed;
}
