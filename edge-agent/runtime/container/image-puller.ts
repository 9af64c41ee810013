import type { ContainerSpec } from '../../../shared/api/workload.js';
import type { Clock } from '../../../shared/clock.js';
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
  signal?: AbortSignal;
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
  const onProgress = (p: PullProgress) => {
    const total = p.progressDetail?.total;
    if (p.id && total !== undefined && total > 0) layers.set(p.id, { current: p.progressDetail?.current ?? 0, total });
    const now = clock.now();
    if (now - lastReport < interval) return;
    lastReport = now;
    const sum = [...layers.values()].reduce((a, l) => ({ current: a.current + l.current, total: a.total + l.total }), { current: 0, total: 0 });
    report.progress(image, sum.total > 0 ? `${mib(sum.current)} of ${mib(sum.total)}` : (p.status ?? 'in progress'));
  };
  await engine.pullImage(image, onProgress, options.signal);
  report.pulled(image, clock.now() - began);
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
