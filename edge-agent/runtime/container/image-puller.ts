import type { ContainerSpec } from '../../../shared/api/workload.js';
import type { Clock, Timer } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import { formatDelay } from '../restart-policy.js';
import type { DockerEngine } from './docker-engine.js';
import type { PullProgress } from './engine-types.js';

export type PullPolicy = NonNullable<ContainerSpec['imagePullPolicy']>;

/** The image is not there and cannot be had; the message says why, for the instance status. */
export class ImageUnavailableError extends Error {
  override readonly name = 'ImageUnavailableError';
}

export interface PullReport {
  /** A pull begins. */
  pulling(image: string): void;
  /** At most every `progressIntervalMs`: e.g. "12.3 MiB of 40.0 MiB". */
  progress(image: string, text: string): void;
  pulled(image: string, ms: number): void;
  /** The pull failed; `fallback` tells whether the cached copy is used instead. */
  failed(image: string, reason: string, fallback: boolean): void;
}

export interface EnsureImageOptions {
  engine: DockerEngine;
  clock: Clock;
  report: PullReport;
  progressIntervalMs?: number;
  /** Aborts the pull (the image is no longer wanted): ensureImage then rejects with the abort reason, nothing reported. */
  signal?: AbortSignal;
  /** A pull with no progress line for this long is given up as failed (a registry that stalls); default 2 min. */
  stallTimeoutMs?: number;
}

/**
 * Makes sure `image` is on this node, per policy. IfNotPresent: a cached copy is used without
 * asking any registry, so it starts offline. Always: pulls, and falls back to the cached copy
 * when the registry cannot be reached. Never: the cached copy or nothing.
 * Rejects with ImageUnavailableError when there is no image to start.
 */
export async function ensureImage(image: string, policy: PullPolicy, options: EnsureImageOptions): Promise<void> {
  const { engine } = options;
  if (policy !== 'Always' && (await engine.hasImage(image))) return;
  if (policy === 'Never') throw new ImageUnavailableError(`image ${image} is not on this node, and imagePullPolicy is Never`);
  try {
    await pull(image, options);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    const cached = policy === 'Always' && (await engine.hasImage(image));
    options.report.failed(image, reason, cached);
    if (cached) return;
    throw new ImageUnavailableError(`cannot pull image ${image}: ${reason}; no copy of it is cached on this node`, { cause: err });
  }
}

async function pull(image: string, options: EnsureImageOptions): Promise<void> {
  const { engine, clock, report } = options;
  const interval = options.progressIntervalMs ?? 2000;
  const began = clock.now();
  let lastReport = began;
  const layers = new Map<string, { current: number; total: number }>();
  report.pulling(image);
  const stall = new StallWatch(clock, options.stallTimeoutMs ?? 120_000);
  const onProgress = (p: PullProgress) => {
    stall.progress();
    const total = p.progressDetail?.total;
    if (p.id && total !== undefined && total > 0) layers.set(p.id, { current: p.progressDetail?.current ?? 0, total });
    const now = clock.now();
    if (now - lastReport < interval) return;
    lastReport = now;
    const sum = [...layers.values()].reduce((a, l) => ({ current: a.current + l.current, total: a.total + l.total }), { current: 0, total: 0 });
    report.progress(image, sum.total > 0 ? `${mib(sum.current)} of ${mib(sum.total)}` : (p.status ?? 'in progress'));
  };
  const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal;
  try {
    await untilAborted(engine.pullImage(image, onProgress, signal), signal);
  } finally {
    stall.stop();
  }
  report.pulled(image, clock.now() - began);
}

/** Aborts its signal when `progress()` was not called for `timeoutMs`. */
class StallWatch {
  private readonly abort = new AbortController();
  private timer: Timer;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
  ) {
    this.timer = this.arm();
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  progress(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = this.arm();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
  }

  private arm(): Timer {
    const timer = this.clock.setTimeout(() => this.abort.abort(new Error(`no progress for ${formatDelay(this.timeoutMs)}`)), this.timeoutMs);
    timer.unref?.();
    return timer;
  }
}

/** `work`, or a rejection with the abort reason as soon as `signal` aborts (an engine call that ignores it). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted && signal.reason instanceof Error ? signal.reason : err);
      },
    );
  });
}

/** The report of an instance's pulls: events, its Pending status message, and progress in the agent log. */
export function pullReporter(to: {
  event: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
  pending: (message: string) => void;
  log: Logger;
}): PullReport {
  return {
    pulling: (image) => {
      to.event('Normal', 'Pulling', `pulling image ${image}`);
      to.pending(`pulling image ${image}`);
    },
    progress: (image, text) => {
      to.log.info({ image, progress: text }, 'pulling image');
      to.pending(`pulling image ${image}: ${text}`);
    },
    pulled: (image, ms) => to.event('Normal', 'Pulled', `pulled image ${image} in ${formatDelay(ms)}`),
    failed: (image, reason, fallback) => {
      to.event('Warning', 'FailedPull', fallback ? `cannot pull image ${image} (${reason}); starting the cached copy` : `cannot pull image ${image}: ${reason}`);
    },
  };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
