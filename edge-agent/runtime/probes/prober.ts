import type { Probe } from '../../../shared/api/workload.js';
import { systemClock, type Clock, type Timer } from '../../../shared/clock.js';
import { describeError, ProbeUnknown, type Check, type CheckOutcome } from './check.js';
import { execCheck } from './exec-check.js';
import { httpCheck } from './http-check.js';
import { tcpCheck } from './tcp-check.js';

/** Where a probe runs: the same Prober serves processes and containers. */
export interface ProbeTarget {
  /** Host for httpGet/tcpSocket when the probe names none: 127.0.0.1 for processes, the container's address for containers. */
  host: string;
  /**
   * Runs an exec probe's command; exit code 0 = success. Processes: a child process with the
   * instance's env and working dir; containers: Docker exec. After `timeoutMs` (the command's own
   * time) or when `signal` aborts (the prober stops), it kills what the command runs and rejects.
   * It rejects with ProbeUnknown when the command could not be run through no fault of the
   * instance (the engine is unreachable or fails): such an attempt is not counted.
   */
  exec(command: string[], timeoutMs: number, signal: AbortSignal): Promise<{ exitCode: number; output: string }>;
}

/** How long past its timeout a self-timed check (exec) may run before the prober gives up on it (not counted). */
const SELF_TIMED_GRACE_MS = 60_000;

/** The probe's verdict; `message` says what was probed and what came back. */
export interface ProbeResult {
  passing: boolean;
  message: string;
}

/** An attempt that could not be made (ProbeUnknown, or a self-timed check that never returned). */
const UNKNOWN = Symbol('unknown');

/** Kubernetes' defaults. */
export const PROBE_DEFAULTS = { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 } as const;

/** The message of a probe that has not run yet. */
export const NOT_PROBED = 'not probed yet';

/**
 * Runs one readiness or liveness probe with Kubernetes semantics: the first attempt after
 * `initialDelaySeconds`, then one every `periodSeconds` (never two at once: a slow attempt delays
 * the next), each bounded by `timeoutSeconds`. The result flips to failing after
 * `failureThreshold` consecutive failures and back to passing after `successThreshold`
 * consecutive successes. Readiness starts not passing, liveness passing. An attempt that could not
 * be made (ProbeUnknown: the engine is down) changes neither the streak nor the result.
 *
 * `onChange` is called when `passing` flips, and once more for a readiness probe whose first
 * attempt fails while it has never passed (no flip, but the message then says what fails).
 * Between calls, `result.message` follows the latest attempt of the same verdict.
 *
 * One lifecycle: start() once, stop() once; a new process gets a new Prober.
 */
export class Prober {
  private current: ProbeResult;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private timer: Timer | null = null;
  private inFlight: AbortController | null = null;
  /** Consecutive attempts with the same outcome. */
  private streak = { ok: true, count: 0 };
  private attempted = false;
  private readonly check: Check;
  private readonly timing: { initialDelayMs: number; periodMs: number; timeoutMs: number; failureThreshold: number; successThreshold: number };

  constructor(
    private readonly kind: 'readiness' | 'liveness',
    probe: Probe,
    target: ProbeTarget,
    private readonly onChange: (result: ProbeResult) => void,
    private readonly clock: Clock = systemClock,
    /** When the probed process or container started (clock ms): initialDelaySeconds counts from then, not from now (an adopted instance). */
    private readonly startedAtMs?: number,
  ) {
    this.current = { passing: kind === 'liveness', message: NOT_PROBED };
    this.check = checkOf(probe, target);
    this.timing = {
      initialDelayMs: (probe.initialDelaySeconds ?? PROBE_DEFAULTS.initialDelaySeconds) * 1000,
      periodMs: (probe.periodSeconds ?? PROBE_DEFAULTS.periodSeconds) * 1000,
      timeoutMs: (probe.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds) * 1000,
      failureThreshold: probe.failureThreshold ?? PROBE_DEFAULTS.failureThreshold,
      successThreshold: probe.successThreshold ?? PROBE_DEFAULTS.successThreshold,
    };
  }

  /** First attempt after initialDelaySeconds, then every periodSeconds. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    const since = this.startedAtMs === undefined ? 0 : Math.max(0, this.clock.now() - this.startedAtMs);
    this.schedule(Math.max(0, this.timing.initialDelayMs - since));
  }

  /** No callback after this; an attempt in flight is aborted (an exec's command is killed by its target). */
  stop(): void {
    this.state = 'stopped';
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.inFlight?.abort();
    this.inFlight = null;
  }

  get result(): ProbeResult {
    return { ...this.current };
  }

  private schedule(ms: number): void {
    const timer = this.clock.setTimeout(() => {
      if (this.timer !== timer) return;
      this.timer = null;
      void this.attempt();
    }, ms);
    timer.unref?.();
    this.timer = timer;
  }

  /** Never rejects: it runs from a timer. The next attempt is scheduled only once this one is over. */
  private async attempt(): Promise<void> {
    if (this.state !== 'running') return;
    const startedAt = this.clock.now();
    const abort = new AbortController();
    this.inFlight = abort;
    try {
      const outcome = await this.runBounded(abort);
      if (this.inFlight !== abort || this.state !== 'running') return;
      this.inFlight = null;
      if (outcome !== UNKNOWN) this.record(outcome);
    } catch {
      // Only a bug gets here (runBounded never rejects, listeners are guarded); keep probing.
      if (this.inFlight === abort) this.inFlight = null;
    } finally {
      if (this.state === 'running' && this.timer === null && this.inFlight === null) {
        this.schedule(Math.max(0, startedAt + this.timing.periodMs - this.clock.now()));
      }
    }
  }

  /**
   * One attempt, failed after timeoutSeconds (the check is aborted then); a self-timed check
   * fails by its own timeout and is only given up (UNKNOWN) long after it. UNKNOWN: not counted.
   */
  private runBounded(abort: AbortController): Promise<CheckOutcome | typeof UNKNOWN> {
    const { timeoutMs } = this.timing;
    const { label, selfTimed } = this.check;
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        abort.abort();
        resolve(selfTimed ? UNKNOWN : { ok: false, message: `${label}: timed out after ${timeoutMs / 1000} s` });
      }, selfTimed ? timeoutMs + SELF_TIMED_GRACE_MS : timeoutMs);
      const settle = (outcome: CheckOutcome | typeof UNKNOWN) => {
        this.clock.clearTimeout(timer);
        resolve(outcome);
      };
      Promise.resolve()
        .then(() => this.check.run(abort.signal, timeoutMs))
        .then(settle, (err: unknown) => settle(err instanceof ProbeUnknown ? UNKNOWN : { ok: false, message: `${label}: ${describeError(err)}` }));
    });
  }

  private record(outcome: CheckOutcome): void {
    this.streak = outcome.ok === this.streak.ok ? { ok: outcome.ok, count: this.streak.count + 1 } : { ok: outcome.ok, count: 1 };
    const firstAttempt = !this.attempted;
    this.attempted = true;
    const threshold = outcome.ok ? this.timing.successThreshold : this.timing.failureThreshold;
    if (outcome.ok !== this.current.passing) {
      if (this.streak.count < threshold) return;
      return this.notify({ passing: outcome.ok, message: outcome.message });
    }
    this.current = { passing: outcome.ok, message: outcome.message };
    if (firstAttempt && this.kind === 'readiness' && !outcome.ok) this.notify(this.current);
  }

  private notify(result: ProbeResult): void {
    this.current = result;
    try {
      this.onChange({ ...result });
    } catch {
      // The listener's failure is the listener's to log; it must not stop the probe.
    }
  }
}

function checkOf(probe: Probe, target: ProbeTarget): Check {
  if (probe.httpGet) return httpCheck(probe.httpGet, target.host);
  if (probe.tcpSocket) return tcpCheck(probe.tcpSocket, target.host);
  if (probe.exec) return execCheck(probe.exec, (command, timeoutMs, signal) => target.exec(command, timeoutMs, signal));
  // Refused at apply time (semanticProblems); kept failing rather than throwing if one gets here.
  return { label: 'probe', run: () => Promise.resolve({ ok: false, message: 'probe: no httpGet, tcpSocket or exec' }) };
}
