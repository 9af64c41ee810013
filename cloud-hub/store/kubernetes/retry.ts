import { Backoff } from '../../../shared/backoff.js';
import { sleep } from '../../../shared/clock.js';
import { OutpostError } from '../../../shared/errors.js';
import { isRetryableStatus, kubeStatus } from './kube-errors.js';
import { KubeNetworkError, type KubeResponse } from './kube-http.js';

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** Tries in all (the first included); default 5. */
  attempts?: number;
  /** Backoff ceilings in ms (full jitter); defaults 100 and 2000. */
  initialMs?: number;
  maxMs?: number;
  signal?: AbortSignal;
}

/**
 * Runs `op` until the API server gives an answer that is not 429/5xx and the network did not fail,
 * at most `attempts` times with backoff; then OutpostError UNAVAILABLE naming `what` and the last
 * failure. A write retried after a lost answer may find its own first attempt (409): callers that
 * send a resourceVersion precondition re-read and see that the write is already there.
 */
export async function withRetry(what: string, op: () => Promise<KubeResponse>, options: RetryOptions = {}): Promise<KubeResponse> {
  const attempts = options.attempts ?? 5;
  const backoff = new Backoff({ initialMs: options.initialMs ?? 100, maxMs: options.maxMs ?? 2000 });
  let last = '';
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await op();
      if (!isRetryableStatus(res.status)) return res;
      last = `HTTP ${res.status}: ${kubeStatus(res.body).message ?? ''}`;
    } catch (err) {
      if (!(err instanceof KubeNetworkError)) throw err;
      if (options.signal?.aborted) throw new OutpostError('UNAVAILABLE', `${what}: cancelled`, { cause: err });
      last = err.message;
    }
    if (attempt >= attempts) break;
    await sleep(backoff.next(), options.signal).catch(() => undefined);
    if (options.signal?.aborted) break;
  }
  throw new OutpostError('UNAVAILABLE', `${what}: the Kubernetes API server is unavailable after ${attempts} tries (last: ${last})`);
}
