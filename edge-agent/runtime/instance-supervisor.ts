import { join } from 'node:path';
import type { ProcessTemplate } from './types.js';
import type { InstanceStatus } from '../../shared/api/instance.js';
import type { Clock, Timer } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { InstanceLogFiles } from './log-files.js';
import { InstanceProcess, type ProcessExit } from './instance-process.js';
import { checkProcess } from './proc-stat.js';
import { exitedStatus, parsePersisted, pendingStatus, runningStatus, toRow } from './instance-record.js';
import { backoffDelay, describeExit, formatDelay, shouldRestart, succeeded, type ExitInfo } from './restart-policy.js';
import type { InstanceRow, RuntimeStateStore } from './runtime-state.js';
import { describeStop, killGroupLeftovers, type TerminateOutcome } from './terminate.js';
import { InstanceProbes } from './probes/instance-probes.js';
import type { ProbeResult } from './probes/prober.js';
import { processProbeTarget } from './probes/process-target.js';
import { instanceEnv } from './spawn-process.js';
import type { DesiredInstance, RuntimeEvent, RuntimeSettings } from './types.js';

export interface SupervisorDeps {
  store: RuntimeStateStore;
  log: Logger;
  clock: Clock;
  settings: RuntimeSettings;
  /** Whether /proc is there (pid + start time identify a process) or only kill(pid, 0). */
  procFs: boolean;
  onStatus: (name: string, status: InstanceStatus) => void;
  onEvent: (event: RuntimeEvent) => void;
  onRemoved: (name: string) => void;
}

/**
 * pending: no process, start when desired. starting: spawn failed, its 'error' is due next tick.
 * running: a process runs (a child of ours, or adopted). stopping: SIGTERM/SIGKILL in progress.
 * exited: the last process ended (`lastExit`); restart per policy after back-off, or terminal.
 */
type State = 'pending' | 'starting' | 'running' | 'stopping' | 'exited' | 'removed';

/** Why a process is stopped: unhealthy (a liveness failure, with its message) restarts it under the policy. */
type StopReason = 'removed' | 'replaced' | { unhealthy: string };

/**
 * Runs one instance: at most one process at a time, restarted per policy with crash-loop back-off,
 * replaced when its template hash changes, stopped when removed. Every transition ends in
 * `converge()`, which compares what runs with `desired` and takes the next step.
 */
export class InstanceSupervisor {
  readonly name: string;
  readonly logs: InstanceLogFiles;
  private readonly log: Logger;
  private spec: { template: ProcessTemplate; templateHash: string };
  /** undefined: restored from the database and not yet confirmed by a reconcile; null: remove. */
  private desired: DesiredInstance | null | undefined;
  private state: State = 'pending';
  private proc: InstanceProcess | null = null;
  private lastExit: ExitInfo | null = null;
  /** Consecutive short-lived runs: the exponent of the back-off. */
  private crashes = 0;
  private restarts = 0;
  /** See PersistedState.startReported. */
  private startReported = true;
  private backoffTimer: Timer | null = null;
  private restartDue = false;
  private stopAbort: AbortController | null = null;
  /** Probes of the process that runs; null without probes or while none runs. */
  private probes: InstanceProbes | null = null;
  /** How the process being stopped ended (a child's exit event; null for an adopted process). */
  private stopExit: ProcessExit | null = null;
  private detached = false;
  private current: InstanceStatus | undefined;
  private readonly removed: Promise<void>;
  private resolveRemoved: () => void = () => undefined;

  private constructor(
    private readonly deps: SupervisorDeps,
    name: string,
    spec: { template: ProcessTemplate; templateHash: string },
  ) {
    this.name = name;
    this.spec = spec;
    this.log = deps.log.child({ instance: name });
    const { settings } = deps;
    this.logs = new InstanceLogFiles(join(settings.logDir, name), settings.logMaxBytes, settings.logFiles);
    this.removed = new Promise((resolve) => (this.resolveRemoved = resolve));
  }

  /** A new instance; it starts on the first `setDesired`. */
  static create(deps: SupervisorDeps, desired: DesiredInstance): InstanceSupervisor {
    const sup = new InstanceSupervisor(deps, desired.name, { template: desired.template, templateHash: desired.templateHash });
    sup.setStatus(pendingStatus(sup.base));
    return sup;
  }

  /** An instance recorded by an earlier agent: adopts its process if that still runs (same pid and start time). */
  static restore(deps: SupervisorDeps, row: InstanceRow): InstanceSupervisor {
    const template = JSON.parse(row.template_json) as ProcessTemplate;
    const sup = new InstanceSupervisor(deps, row.name, { template, templateHash: row.template_hash });
    const persisted = parsePersisted(row.state_json);
    sup.restarts = row.restarts;
    sup.crashes = persisted.crashes ?? 0;
    if (row.pid !== null) {
      // The agent before was killed between saving this pid and reporting its start.
      const startUnreported = persisted.startReported === false;
      const liveness = checkProcess(row.pid, row.start_time, deps.procFs);
      if (liveness === 'alive') {
        const p = InstanceProcess.adopt({ pid: row.pid, startTime: row.start_time, startedAt: row.started_at }, deps);
        sup.track(p);
        sup.state = 'running';
        sup.startProbes(p);
        sup.setStatus(sup.runningNow(p));
        if (startUnreported) sup.reportStart(row.pid, p.startedAt, sup.spec.template.command);
        sup.event('Normal', 'Adopted', `adopted running pid ${row.pid} (started ${p.startedAt})`);
        return sup;
      }
      // Saved with the Exited event's row below: saving now would drop the pid before the end is reported.
      if (startUnreported && row.started_at) sup.reportStart(row.pid, row.started_at, sup.spec.template.command, false);
      if (liveness === 'gone') killGroupLeftovers(row.pid);
      sup.lastExit = { code: null, signal: null, message: 'exited while the agent was down (exit code unknown)' };
      sup.state = 'exited';
      // Most likely a power cut or reboot took the node down with it: that is no crash loop, so
      // the first restart is immediate (offline cold start target: all instances up within 2 s).
      sup.restartDue = true;
      sup.event('Warning', 'Exited', `pid ${row.pid} ${sup.lastExit.message}`, { pid: row.pid, startedAt: row.started_at ?? '', edge: 'end' });
      sup.setStatus(exitedStatus(sup.base, sup.lastExit));
    } else if (persisted.lastExit) {
      sup.lastExit = persisted.lastExit;
      sup.state = 'exited';
      sup.setStatus(exitedStatus(sup.base, sup.lastExit));
    } else {
      sup.setStatus(pendingStatus(sup.base));
    }
    return sup;
  }

  /** The template hash of what this supervisor runs (or is about to run). */
  get templateHash(): string {
    return this.spec.templateHash;
  }

  /**
   * The environment and working directory this instance's process gets (for `outpost exec`);
   * undefined unless a process runs. An instance adopted after an agent restart and kept while its
   * config is unreadable has no config env here: runtime.db never holds those values.
   */
  execContext(): { env: Record<string, string>; cwd: string } | undefined {
    if (this.state !== 'running' || this.detached) return undefined;
    const { template } = this.spec;
    const { settings } = this.deps;
    return { env: instanceEnv(template, { ...settings.baseEnv, OUTPOST_INSTANCE: this.name }, settings.defaultPath), cwd: template.workingDir ?? join(settings.workDir, this.name) };
  }

  /** The instance as the agent wants it, or null to stop and forget it. */
  setDesired(desired: DesiredInstance | null): void {
    this.desired = desired;
    this.converge();
  }

  status(): InstanceStatus {
    return { ...(this.current ?? pendingStatus(this.base)) };
  }

  /** Resolves once the instance is stopped and its row deleted. */
  whenRemoved(): Promise<void> {
    return this.removed;
  }

  /** Periodic work: liveness of an adopted process (no 'exit' event for it) and the log size. */
  poll(): void {
    if (this.detached) return;
    if (this.state === 'running') this.proc?.poll();
    this.refreshReadinessMessage();
    if (this.logs.rotateIfNeeded()) this.event('Normal', 'LogRotated', `rotated ${this.logs.current}`);
  }

  /** Stops supervising: timers, listeners and any stop in progress. The process keeps running. */
  detach(): void {
    this.detached = true;
    this.stopProbes();
    this.clearBackoff();
    this.stopAbort?.abort();
    this.proc?.detach();
  }

  private converge(): void {
    if (this.detached || this.state === 'stopping' || this.state === 'starting' || this.state === 'removed') return;
    const want = this.desired;
    if (want === undefined) return;
    if (want === null) {
      if (this.proc) return this.beginStop('removed');
      return this.remove();
    }
    if (want.templateHash !== this.spec.templateHash) {
      // Never two processes of one instance: the old one is gone before the new one starts.
      if (this.proc) return this.beginStop('replaced');
      this.clearBackoff();
      const old = this.spec.templateHash;
      this.spec = { template: want.template, templateHash: want.templateHash };
      this.restarts = 0;
      this.crashes = 0;
      this.lastExit = null;
      this.state = 'pending';
      this.event('Normal', 'Replaced', `template ${old} replaced by ${want.templateHash}`);
      return this.spawn();
    }
    this.spec = { template: want.template, templateHash: want.templateHash };
    if (this.state === 'running') return;
    if (this.state === 'pending') return this.spawn();
    const exit = this.lastExit;
    if (!exit || !shouldRestart(this.spec.template.restartPolicy, exit)) return;
    if (this.restartDue) {
      this.restartDue = false;
      this.restarts++;
      return this.spawn();
    }
    if (this.backoffTimer === null) this.armBackoff(exit);
  }

  private spawn(): void {
    const { template } = this.spec;
    const { settings } = this.deps;
    this.state = 'starting';
    const p = InstanceProcess.spawn(
      { template, defaultCwd: join(settings.workDir, this.name), openLog: () => this.logs.openAppend(), baseEnv: { ...settings.baseEnv, OUTPOST_INSTANCE: this.name }, defaultPath: settings.defaultPath },
      this.deps,
      (message) => this.safe(() => this.startFailed(message)),
    );
    if (!p) return;
    this.track(p);
    this.state = 'running';
    this.startProbes(p);
    this.startReported = false;
    this.setStatus(this.runningNow(p)); // writes the row with pid and start time
    this.reportStart(p.pid, p.startedAt, template.command);
  }

  /** The Started event, then the row saying it is in the outbox (see PersistedState.startReported). */
  private reportStart(pid: number, startedAt: string, command: string, save = true): void {
    this.event('Normal', 'Started', `started pid ${pid}: ${command}`, { pid, startedAt, edge: 'start' });
    this.startReported = true;
    if (save) this.save();
  }

  private startFailed(message: string): void {
    if (this.detached) return;
    this.state = 'exited';
    this.lastExit = { code: null, signal: null, message, failedStart: true };
    this.event('Warning', 'FailedStart', message);
    this.setStatus(exitedStatus(this.base, this.lastExit));
    this.converge();
  }

  private track(p: InstanceProcess): void {
    this.proc = p;
    p.onExit((exit) => this.safe(() => this.onProcessExit(p, exit)));
  }

  private onProcessExit(p: InstanceProcess, { code, signal }: ProcessExit): void {
    if (this.proc !== p || this.detached) return;
    this.proc = null;
    this.stopProbes();
    if (this.state === 'stopping') {
      this.stopExit = { code, signal };
      return; // the stop in progress waits for the whole group
    }
    p.killLeftovers();
    if (this.deps.clock.now() - p.startedAtMs >= this.deps.settings.backoffResetAfterMs) this.crashes = 0;
    const exit: ExitInfo = { code, signal, message: describeExit(code, signal) };
    this.lastExit = exit;
    this.state = 'exited';
    this.event(succeeded(exit) ? 'Normal' : 'Warning', 'Exited', `pid ${p.pid} ${exit.message}`, { pid: p.pid, startedAt: p.startedAt, edge: 'end' });
    this.setStatus(exitedStatus(this.base, exit));
    this.converge();
  }

  private armBackoff(exit: ExitInfo): void {
    const { backoffInitialMs, backoffMaxMs } = this.deps.settings;
    const delay = backoffDelay(this.crashes, backoffInitialMs, backoffMaxMs);
    this.crashes++;
    const timer = this.deps.clock.setTimeout(() => {
      this.safe(() => {
        if (this.backoffTimer !== timer) return;
        this.backoffTimer = null;
        this.restartDue = true;
        this.converge();
      });
    }, delay);
    timer.unref?.();
    this.backoffTimer = timer;
    const message = `${exit.message}; back-off restarting, next in ${formatDelay(delay)}`;
    this.event('Warning', 'BackOff', message);
    this.setStatus(exitedStatus(this.base, exit, message));
  }

  private clearBackoff(): void {
    if (this.backoffTimer !== null) this.deps.clock.clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    this.restartDue = false;
  }

  /** Asynchronous: SIGTERM, grace, SIGKILL; `converge()` again once the whole group is gone. */
  private beginStop(reason: StopReason): void {
    const p = this.proc;
    if (!p) return;
    this.state = 'stopping';
    this.stopProbes();
    this.stopExit = null;
    this.clearBackoff();
    const graceMs = (this.spec.template.terminationGracePeriodSeconds ?? 10) * 1000;
    const message = reason === 'removed' ? 'stopping: removed from this node' : reason === 'replaced' ? 'stopping: template changed' : `stopping: ${reason.unhealthy}`;
    this.setStatus(runningStatus(this.base, p, message));
    const abort = new AbortController();
    this.stopAbort = abort;
    p.terminate(graceMs, this.deps.clock, abort.signal).then(
      (outcome) => this.safe(() => this.finishStop(p, outcome, graceMs, reason)),
      (err: unknown) => this.log.error({ err, pid: p.pid }, 'stopping the instance failed'),
    );
  }

  private finishStop(p: InstanceProcess, outcome: TerminateOutcome, graceMs: number, why: StopReason): void {
    this.stopAbort = null;
    if (outcome === 'aborted' || this.detached) return;
    if (outcome === 'stuck') this.log.error({ pid: p.pid }, 'process group survived SIGKILL');
    const [type, reason] = outcome === 'exited' ? (['Normal', 'Stopped'] as const) : (['Warning', 'Killed'] as const);
    this.event(type, reason, describeStop(outcome, p.pid, graceMs), { pid: p.pid, startedAt: p.startedAt, edge: 'end' });
    this.proc = null;
    if (typeof why === 'object') return this.restartUnhealthy(p, outcome, why.unhealthy);
    this.lastExit = null;
    this.state = 'pending';
    this.converge();
  }

  /**
   * After a liveness kill: an exit like any other, a failure even if the process exited 0 on
   * SIGTERM (as in Kubernetes, restarted unless the policy is Never), with the usual back-off.
   */
  private restartUnhealthy(p: InstanceProcess, outcome: TerminateOutcome, message: string): void {
    const seen = this.stopExit;
    this.stopExit = null;
    if (this.deps.clock.now() - p.startedAtMs >= this.deps.settings.backoffResetAfterMs) this.crashes = 0;
    const exit: ExitInfo = { code: seen?.code || null, signal: seen?.signal ?? (outcome === 'killed' ? 'SIGKILL' : null), message };
    this.lastExit = exit;
    this.state = 'exited';
    this.setStatus(exitedStatus(this.base, exit));
    this.converge();
  }

  private startProbes(p: InstanceProcess): void {
    const { template } = this.spec;
    const { settings, clock } = this.deps;
    const env = instanceEnv(template, { ...settings.baseEnv, OUTPOST_INSTANCE: this.name }, settings.defaultPath);
    const current = () => this.proc === p && this.state === 'running' && !this.detached;
    this.probes = InstanceProbes.forTemplate({
      ...(template.readinessProbe && { readinessProbe: template.readinessProbe }),
      ...(template.livenessProbe && { livenessProbe: template.livenessProbe }),
      target: processProbeTarget({ env, cwd: template.workingDir ?? join(settings.workDir, this.name), clock }),
      clock,
      // An adopted process (agent restart) waits out only what is left of its initial delay.
      startedAtMs: p.startedAtMs,
      onReadiness: (result) => this.safe(() => current() && this.readinessChanged(p, result)),
      onLivenessFailure: (result) => this.safe(() => current() && this.livenessFailed(result)),
    });
    this.probes?.start();
  }

  private stopProbes(): void {
    this.probes?.stop();
    this.probes = null;
  }

  private readinessChanged(p: InstanceProcess, result: ProbeResult): void {
    const before = this.current?.ready === true;
    this.setStatus(this.runningNow(p));
    if (before && !result.passing) this.event('Warning', 'Unhealthy', `readiness probe failed: ${result.message}`);
  }

  private livenessFailed(result: ProbeResult): void {
    const message = `liveness probe failed: ${result.message}`;
    this.event('Warning', 'Unhealthy', message);
    this.beginStop({ unhealthy: message });
  }

  /** The prober calls back only when the verdict flips: a failure that changes (503, then refused) shows here. */
  private refreshReadinessMessage(): void {
    const p = this.proc;
    if (this.state !== 'running' || !p || !this.probes?.readinessResult()) return;
    const next = this.runningNow(p);
    if (next.message !== this.current?.message) this.setStatus(next);
  }

  /** Running status; with a readiness probe, ready only while it passes, and the message says why not. */
  private runningNow(p: InstanceProcess): InstanceStatus {
    const status = runningStatus(this.base, p);
    const readiness = this.probes?.readinessResult();
    if (readiness && !readiness.passing) {
      status.ready = false;
      status.message = `readiness: ${readiness.message}`;
    }
    return status;
  }

  private remove(): void {
    this.clearBackoff();
    this.state = 'removed';
    this.deps.store.delete(this.name);
    this.event('Normal', 'Removed', 'instance removed from this node');
    this.deps.onRemoved(this.name);
    this.resolveRemoved();
  }

  private get base(): { restarts: number; templateHash: string } {
    return { restarts: this.restarts, templateHash: this.spec.templateHash };
  }

  /** Persists the instance, then tells listeners if the status changed. */
  private setStatus(next: InstanceStatus): void {
    const changed = JSON.stringify(next) !== JSON.stringify(this.current);
    this.current = next;
    this.save();
    if (changed) this.deps.onStatus(this.name, { ...next });
  }

  private save(): void {
    if (this.state === 'removed') return;
    const persisted = { lastExit: this.lastExit, crashes: this.crashes, ...(this.current ? { status: this.current } : {}), ...(this.startReported ? {} : { startReported: false }) };
    this.deps.store.save(toRow({ name: this.name, ...this.spec, restarts: this.restarts, proc: this.proc, persisted }));
  }

  private event(type: RuntimeEvent['type'], reason: string, message: string, process?: RuntimeEvent['process']): void {
    this.deps.onEvent({ type, reason, message, instance: this.name, ...(process ? { process } : {}) });
  }

  /** Timers and child events call in here: nothing may throw out of them. */
  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'instance supervision failed');
    }
  }
}
