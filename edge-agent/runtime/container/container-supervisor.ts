import { join } from 'node:path';
import type { InstanceStatus } from '../../../shared/api/instance.js';
import type { AppTemplate, ContainerSpec } from '../../../shared/api/workload.js';
import type { Timer } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import { InstanceLogFiles } from '../log-files.js';
import { InstanceProbes } from '../probes/instance-probes.js';
import { backoffDelay, formatDelay, shouldRestart, succeeded, type ExitInfo } from '../restart-policy.js';
import type { RuntimeEvent } from '../types.js';
import type { DesiredContainer } from '../workload-runtime.js';
import { containerCreateBody, containerName, containerSpecOf, LABEL_INSTANCE, LABEL_NODE } from './container-config.js';
import { containerProbeTarget, runFromInspect, runKey, validTime, type ContainerRun } from './container-run.js';
import type { ContainerSupervisorDeps } from './container-deps.js';
import { containerExit, exitedContainerStatus, pendingContainerStatus, runningContainerStatus, shortId } from './container-status.js';
import { EngineError } from './docker-engine.js';
import type { ContainerInspect, ContainerSummary } from './engine-types.js';
import { ensureImage, ImageUnavailableError, pullReporter, type PullReport } from './image-puller.js';
import { ContainerLogPump } from './log-pump.js';
import { StepLoop } from './step-loop.js';

/**
 * Runs one container instance: at most one container at a time, restarted by this supervisor
 * (never by the engine) per restart policy with crash-loop back-off, replaced when the template
 * hash changes, removed when no longer desired. Engine calls are asynchronous, so every change
 * (reconcile, exit seen by the poll, probe, timer) only calls `kick()`; one loop at a time then
 * takes one step after the other towards `desired` until nothing is left to do.
 */
export class ContainerSupervisor {
  readonly name: string;
  readonly logs: InstanceLogFiles;
  private readonly log: Logger;
  private readonly pump: ContainerLogPump;
  /** undefined: adopted and not yet confirmed by a reconcile; null: remove. */
  private desired: DesiredContainer | null | undefined;
  /** The template of `container` (or of the next one); unknown for an adopted one until a reconcile names it. */
  private template: AppTemplate | undefined;
  private templateHash: string;
  private container: ContainerRun | null = null;
  private lastExit: ExitInfo | null = null;
  private crashes = 0;
  private restarts = 0;
  /** See ContainerCounters.unreportedStart. */
  private unreportedStart: string | undefined;
  private restartDue = false;
  private backoffTimer: Timer | null = null;
  /** The template hash the back-off was armed for: a new template does not wait it out. */
  private backoffHash = '';
  /** The pull in progress and the template it is for; aborted when that template is no longer wanted. */
  private pull: { abort: AbortController; templateHash: string } | null = null;
  private retryTimer: Timer | null = null;
  private engineFailures = 0;
  private needsInspect = false;
  private livenessFailure: string | null = null;
  private probes: InstanceProbes | null = null;
  /** The run whose probes were started (with its template known). */
  private probedRun: ContainerRun | null = null;
  private readonly loop: StepLoop;
  private detached = false;
  private removedFlag = false;
  private current: InstanceStatus | undefined;
  private readonly removed: Promise<void>;
  private resolveRemoved: () => void = () => undefined;

  private constructor(
    private readonly deps: ContainerSupervisorDeps,
    name: string,
    templateHash: string,
  ) {
    this.name = name;
    this.templateHash = templateHash;
    this.log = deps.log.child({ instance: name });
    const { settings } = deps;
    this.logs = new InstanceLogFiles(join(settings.logDir, name), settings.logMaxBytes, settings.logFiles);
    this.pump = new ContainerLogPump(deps.engine, this.logs, this.log);
    const counters = deps.counters?.get(name);
    this.restarts = counters?.restarts ?? 0;
    this.crashes = counters?.crashes ?? 0;
    this.unreportedStart = counters?.unreportedStart;
    this.removed = new Promise((resolve) => (this.resolveRemoved = resolve));
    this.loop = new StepLoop({
      step: () => this.step(),
      active: () => !this.detached && !this.removedFlag,
      onSuccess: () => (this.engineFailures = 0),
      onError: (err) => this.stepFailed(err),
    });
  }

  /** A new instance; it starts on the first `setDesired`. */
  static create(deps: ContainerSupervisorDeps, desired: DesiredContainer): ContainerSupervisor {
    const sup = new ContainerSupervisor(deps, desired.name, desired.templateHash);
    sup.template = desired.template;
    sup.setStatus(pendingContainerStatus(sup.base));
    return sup;
  }

  /** The container an earlier agent left (found by its labels): supervised again, never started twice. */
  static adopt(deps: ContainerSupervisorDeps, name: string, inspect: ContainerInspect): ContainerSupervisor {
    const c = runFromInspect(inspect, deps.clock.now());
    const sup = new ContainerSupervisor(deps, name, c.templateHash);
    sup.container = c;
    // The agent before was killed between starting this container and reporting it: report it
    // now, before what happened since (the hub drops a start it already has, by pid and time).
    if (sup.unreportedStart === c.id && c.startedAt !== null) {
      sup.event('Normal', 'Started', `started container ${shortId(c.id)}, pid ${c.pid ?? '?'} (reported by the next agent)`, runKey(c, 'start'));
    }
    if (sup.unreportedStart !== undefined) {
      sup.unreportedStart = undefined;
      sup.saveCounters();
    }
    if (c.running) {
      sup.setStatus(sup.runningNow(c));
      sup.event('Normal', 'Adopted', `adopted running container ${shortId(c.id)} (pid ${c.pid ?? '?'}, started ${c.startedAt ?? '?'})`);
      sup.pump.follow(c.id, sup.pump.resumePoint());
    } else if (c.startedAt !== null) {
      // It ended while no agent watched (most likely with the node): restart at once, no back-off.
      const exit = containerExit(inspect.State);
      sup.lastExit = { ...exit, message: `${exit.message} while the agent was down` };
      sup.restartDue = true;
      sup.event(succeeded(exit) ? 'Normal' : 'Warning', 'Exited', `container ${shortId(c.id)} ${sup.lastExit.message}`);
      sup.setStatus(exitedContainerStatus(sup.base, sup.lastExit, c.id));
    } else {
      sup.setStatus(pendingContainerStatus(sup.base, `adopted container ${shortId(c.id)}, created but never started`));
    }
    return sup;
  }

  /** The id of this instance's container while it runs (for exec); undefined otherwise. */
  runningContainerId(): string | undefined {
    return this.container?.running && !this.detached && !this.removedFlag ? this.container.id : undefined;
  }

  /** The instance as the agent wants it, or null to stop and remove it. */
  setDesired(desired: DesiredContainer | null): void {
    this.desired = desired;
    if (this.pull && this.pull.templateHash !== desired?.templateHash) this.pull.abort.abort(new Error('superseded'));
    this.kick();
  }

  /** What the runtime's periodic list saw of this instance's container (undefined: none). */
  observe(summary: ContainerSummary | undefined): void {
    const c = this.container;
    // Seen during a step (a long pull, say) too: at worst one needless inspect after it.
    if (!c) return;
    const running = summary?.State === 'running';
    if (summary === undefined || summary.Id !== c.id || running !== c.running) {
      this.needsInspect = true;
      this.kick();
    }
  }

  status(): InstanceStatus {
    return { ...(this.current ?? pendingContainerStatus(this.base)) };
  }

  whenRemoved(): Promise<void> {
    return this.removed;
  }

  /** Periodic work besides exits: the log size, and the message of a failing readiness probe. */
  poll(): void {
    if (this.detached) return;
    if (this.logs.rotateIfNeeded()) this.event('Normal', 'LogRotated', `rotated ${this.logs.current}`);
    const c = this.container;
    if (c?.running && !this.loop.busy && this.probes?.readinessResult()) {
      const next = this.runningNow(c);
      if (next.message !== this.current?.message || next.ready !== this.current?.ready) this.setStatus(next);
    }
  }

  /** Stops supervising (timers, probes, log copy, a pull); the container keeps running for the next agent. */
  detach(): void {
    this.detached = true;
    this.pull?.abort.abort(new Error('detached'));
    this.clearTimers();
    this.stopProbes();
    this.pump.stop();
  }

  private kick(): void {
    this.loop.kick();
  }

  /** One step towards `desired`; kicks again when another one is due at once. */
  private async step(): Promise<void> {
    const c = this.container;
    if (c && this.needsInspect) {
      this.needsInspect = false;
      return this.refresh(c);
    }
    const want = this.desired;
    if (want === undefined) return;
    if (want === null) return this.removeInstance(c);
    if (this.backoffTimer !== null && this.backoffHash !== want.templateHash) this.newTemplateNoBackoff(want);
    if (c && c.templateHash !== want.templateHash) return this.replace(c, want);
    this.template = want.template;
    this.templateHash = want.templateHash;
    if (!c) {
      // A finished container removed behind our back is not run again against its policy.
      if (this.lastExit && !this.lastExit.failedStart && !shouldRestart(want.template.restartPolicy, this.lastExit)) return;
      return this.createAndStart(want);
    }
    if (c.running) {
      if (this.livenessFailure !== null) return this.restartUnhealthy(c);
      if (this.probedRun !== c) {
        // An adopted container: its template is known only now.
        this.startProbes(c);
        this.setStatus(this.runningNow(c));
      }
      return;
    }
    if (!this.lastExit) return this.startContainer(c, false);
    if (!shouldRestart(want.template.restartPolicy, this.lastExit)) return;
    if (this.restartDue) {
      this.restartDue = false;
      this.restarts++;
      return this.startContainer(c, true);
    }
    if (this.backoffTimer === null) this.armBackoff(this.lastExit, want.templateHash);
  }

  /** Re-reads the container (the poll saw a change, or an engine call failed), then steps on. */
  private async refresh(c: ContainerRun): Promise<void> {
    const inspect = await this.deps.engine.inspectContainer(c.id);
    this.kick();
    if (!inspect) {
      this.stopProbes();
      this.pump.stop();
      this.container = null;
      if (c.running) this.exited(c, { code: null, signal: null, message: `container ${shortId(c.id)} was removed by someone else` });
      return;
    }
    if (inspect.State.Running !== true && c.running) this.exited(c, containerExit(inspect.State));
  }

  private exited(c: ContainerRun, exit: ExitInfo): void {
    this.stopProbes();
    c.running = false;
    if (this.deps.clock.now() - c.startedAtMs >= this.deps.settings.backoffResetAfterMs) this.crashes = 0;
    this.lastExit = exit;
    this.event(succeeded(exit) ? 'Normal' : 'Warning', 'Exited', `container ${shortId(c.id)} ${exit.message}`, runKey(c, 'end'));
    this.setStatus(exitedContainerStatus(this.base, exit, this.container?.id ?? null));
  }

  private async createAndStart(want: DesiredContainer): Promise<void> {
    if (this.backoffTimer !== null) return;
    if (!(await this.prepareImage(want))) return;
    const body = containerCreateBody(want, { node: this.deps.settings.node, baseEnv: this.deps.settings.baseEnv });
    const name = containerName(this.deps.settings.node, this.name);
    let id: string;
    try {
      id = await this.deps.engine.createContainer(name, body);
    } catch (err) {
      if (err instanceof EngineError && err.status === 409 && (await this.removeOwnLeftover(name))) {
        this.kick();
        return;
      }
      throw err;
    }
    this.container = { id, templateHash: want.templateHash, running: false, pid: null, startedAt: null, startedAtMs: this.deps.clock.now(), address: undefined };
    this.lastExit = null;
    this.restartDue = false;
    this.kick();
  }

  /** After a 409 on create: a container of ours with that name (an interrupted replacement) is removed; anyone else's is an error. */
  private async removeOwnLeftover(name: string): Promise<boolean> {
    const other = await this.deps.engine.inspectContainer(name);
    const labels = other?.Config?.Labels ?? {};
    if (!other) return true;
    if (labels[LABEL_NODE] === this.deps.settings.node && labels[LABEL_INSTANCE] === this.name) {
      await this.deps.engine.removeContainer(other.Id);
      return true;
    }
    throw new Error(`a container named ${name} already exists and is not managed by this agent: remove it (podman rm -f ${name})`);
  }

  private async startContainer(c: ContainerRun, restart: boolean): Promise<void> {
    // The new run's output is what the engine logs after the previous run finished (a run's first
    // lines come before the StartedAt the engine records, so that is no boundary).
    const previous = c.startedAt === null ? undefined : await this.deps.engine.inspectContainer(c.id);
    const logsSince = validTime(previous?.State.FinishedAt) ?? '0';
    this.unreportedStart = c.id;
    this.saveCounters();
    try {
      await this.deps.engine.startContainer(c.id);
    } catch (err) {
      if (!(err instanceof EngineError) || err.unreachable) throw err;
      this.unreportedStart = undefined;
      this.lastExit = { code: null, signal: null, message: `cannot start container: ${err.message}`, failedStart: true };
      this.event('Warning', 'FailedStart', this.lastExit.message);
      this.setStatus(exitedContainerStatus(this.base, this.lastExit, c.id));
      this.kick();
      return;
    }
    const inspect = await this.deps.engine.inspectContainer(c.id);
    if (inspect) Object.assign(c, { ...runFromInspect(inspect, this.deps.clock.now()), templateHash: c.templateHash });
    else c.running = false;
    this.livenessFailure = null;
    this.saveCounters();
    this.pump.follow(c.id, logsSince);
    this.startProbes(c);
    this.setStatus(this.runningNow(c));
    const image = this.spec()?.image;
    this.event('Normal', 'Started', `${restart ? 'restarted' : 'started'} container ${shortId(c.id)}${image ? ` (${image})` : ''}, pid ${c.pid ?? '?'}`, runKey(c, 'start'));
    this.unreportedStart = undefined;
    this.saveCounters();
    if (!c.running) this.needsInspect = true; // it ended already: the next step sees how
    this.kick();
  }

  /** Pulls per policy; false (and a back-off) when there is no image to start. */
  private async prepareImage(want: DesiredContainer): Promise<boolean> {
    const spec = containerSpecOf(want.template);
    const pull = { abort: new AbortController(), templateHash: want.templateHash };
    this.pull = pull;
    try {
      await ensureImage(spec.image, spec.imagePullPolicy ?? 'IfNotPresent', {
        engine: this.deps.engine,
        clock: this.deps.clock,
        report: this.pullReport(),
        signal: pull.abort.signal,
        stallTimeoutMs: this.deps.settings.pullStallTimeoutMs,
      });
      return true;
    } catch (err) {
      // Not wanted any more (a newer template, removal, detach): the next step does what is wanted now.
      if (pull.abort.signal.aborted) {
        this.kick();
        return false;
      }
      if (!(err instanceof ImageUnavailableError)) throw err;
      const exit: ExitInfo = { code: null, signal: null, message: err.message, failedStart: true };
      if (this.container?.running) {
        // A replacement whose image cannot be had: the old container keeps serving meanwhile.
        this.setStatus({ ...this.runningNow(this.container), message: `cannot replace: ${err.message}` });
      } else {
        this.lastExit = exit;
        this.setStatus(exitedContainerStatus(this.base, exit, null));
      }
      this.armBackoff(exit, want.templateHash);
      return false;
    } finally {
      if (this.pull === pull) this.pull = null;
    }
  }

  private async replace(c: ContainerRun, want: DesiredContainer): Promise<void> {
    if (this.backoffTimer !== null) return;
    if (!(await this.prepareImage(want))) return;
    await this.stopAndRemove(c, 'stopping: template changed');
    this.event('Normal', 'Replaced', `template ${c.templateHash} replaced by ${want.templateHash}`);
    this.restarts = 0;
    this.crashes = 0;
    this.lastExit = null;
    this.template = want.template;
    this.templateHash = want.templateHash;
    this.saveCounters();
    this.setStatus(pendingContainerStatus(this.base));
    this.kick();
  }

  /**
   * The crash-loop back-off was for another template (a crash of the old one, a failed pull of the
   * old image): the new template starts at once, with a fresh count.
   */
  private newTemplateNoBackoff(want: DesiredContainer): void {
    if (this.backoffTimer !== null) this.deps.clock.clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    this.restartDue = false;
    this.crashes = 0;
    if (!this.container) this.lastExit = null;
    this.saveCounters();
    this.log.info({ templateHash: want.templateHash }, 'template changed: back-off cleared');
  }

  private async removeInstance(c: ContainerRun | null): Promise<void> {
    this.clearTimers();
    if (c) await this.stopAndRemove(c, 'stopping: removed from this node');
    if (this.desired) {
      // Wanted again while it was being removed: it starts afresh instead.
      this.lastExit = null;
      this.restarts = 0;
      this.crashes = 0;
      this.saveCounters();
      this.setStatus(pendingContainerStatus(this.base));
      this.kick();
      return;
    }
    this.removedFlag = true;
    this.deps.counters?.delete(this.name);
    this.event('Normal', 'Removed', 'instance removed from this node');
    this.deps.onRemoved(this.name);
    this.resolveRemoved();
  }

  /** Stop signal, grace, SIGKILL (by the engine), then remove. */
  private async stopAndRemove(c: ContainerRun, message: string): Promise<void> {
    this.stopProbes();
    if (c.running) {
      this.setStatus({ ...this.runningNow(c), ready: false, message });
      await this.deps.engine.stopContainer(c.id, this.graceSeconds());
      this.pump.stop();
      const after = await this.deps.engine.inspectContainer(c.id);
      const exit = after ? containerExit(after.State) : null;
      this.event('Normal', 'Stopped', `stopped container ${shortId(c.id)}${exit ? `: ${exit.message}` : ''}`, runKey(c, 'end'));
    }
    this.pump.stop();
    await this.deps.engine.removeContainer(c.id);
    this.container = null;
  }

  /**
   * A liveness failure: stopped like any stop, then an exit like any other, a failure whatever
   * its code (restarted unless the policy is Never, with the usual back-off).
   */
  private async restartUnhealthy(c: ContainerRun): Promise<void> {
    const reason = this.livenessFailure ?? 'liveness probe failed';
    this.livenessFailure = null;
    this.stopProbes();
    this.setStatus({ ...this.runningNow(c), ready: false, message: `stopping: ${reason}` });
    let after: ContainerInspect | undefined;
    try {
      await this.deps.engine.stopContainer(c.id, this.graceSeconds());
      after = await this.deps.engine.inspectContainer(c.id);
    } catch (err) {
      // The step is retried (stepFailed): the stop is still owed, and if the container turns out
      // to run on, its probes start again (probedRun).
      this.livenessFailure = reason;
      this.probedRun = null;
      throw err;
    }
    const exit = after ? containerExit(after.State) : { code: null, signal: null, message: 'exited' };
    this.exited(c, { ...exit, code: exit.code === 0 ? null : exit.code, message: reason });
    this.kick();
  }

  private armBackoff(exit: ExitInfo, templateHash: string): void {
    const { backoffInitialMs, backoffMaxMs } = this.deps.settings;
    this.backoffHash = templateHash;
    const delay = backoffDelay(this.crashes, backoffInitialMs, backoffMaxMs);
    this.crashes++;
    this.saveCounters();
    const timer = this.deps.clock.setTimeout(() => {
      if (this.backoffTimer !== timer) return;
      this.backoffTimer = null;
      this.restartDue = true;
      this.kick();
    }, delay);
    timer.unref?.();
    this.backoffTimer = timer;
    const message = `${exit.message}; back-off ${this.container ? 'restarting' : 'retrying'}, next in ${formatDelay(delay)}`;
    this.event('Warning', 'BackOff', message);
    if (this.container?.running) return;
    this.setStatus(exitedContainerStatus(this.base, exit, this.container?.id ?? null, message));
  }

  /** An engine call failed (unreachable, 5xx): say so in the status and try again later. */
  private stepFailed(err: unknown): void {
    const message = `container engine: ${err instanceof Error ? err.message : String(err)}`;
    this.engineFailures++;
    if (this.engineFailures === 1) {
      this.log.warn({ err }, 'container engine call failed; retrying');
      this.event('Warning', 'EngineError', message);
    }
    this.setStatus({ ...this.status(), message: message.slice(0, 4000) });
    if (this.retryTimer !== null) return;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.engineFailures - 1, 5));
    const timer = this.deps.clock.setTimeout(() => {
      if (this.retryTimer !== timer) return;
      this.retryTimer = null;
      if (this.container) this.needsInspect = true;
      this.kick();
    }, delay);
    timer.unref?.();
    this.retryTimer = timer;
  }

  private startProbes(c: ContainerRun): void {
    this.stopProbes();
    const t = this.template;
    if (!t || !c.running) return;
    this.probedRun = c;
    const spec = this.spec();
    if (!spec) return;
    const current = () => this.container === c && c.running && !this.detached;
    this.probes = InstanceProbes.forTemplate({
      ...(spec.readinessProbe && { readinessProbe: spec.readinessProbe }),
      ...(spec.livenessProbe && { livenessProbe: spec.livenessProbe }),
      target: containerProbeTarget(this.deps.engine, c, t.hostNetwork === true),
      clock: this.deps.clock,
      startedAtMs: c.startedAtMs,
      onReadiness: (result) => {
        if (!current()) return;
        const before = this.current?.ready === true;
        this.setStatus(this.runningNow(c));
        if (before && !result.passing) this.event('Warning', 'Unhealthy', `readiness probe failed: ${result.message}`);
      },
      onLivenessFailure: (result) => {
        if (!current()) return;
        this.livenessFailure = `liveness probe failed: ${result.message}`;
        this.event('Warning', 'Unhealthy', this.livenessFailure);
        this.kick();
      },
    });
    this.probes?.start();
  }

  private stopProbes(): void {
    this.probes?.stop();
    this.probes = null;
  }

  /**
   * Running status; with a readiness probe, ready only while it passes, and the message says why
   * not. An adopted container whose template no reconcile has named yet is not counted ready.
   */
  private runningNow(c: ContainerRun): InstanceStatus {
    const readiness = this.probes?.readinessResult();
    if (readiness) return runningContainerStatus(this.base, c, readiness.passing ? { ready: true } : { ready: false, message: `readiness: ${readiness.message}` });
    if (this.template === undefined) return runningContainerStatus(this.base, c, { ready: false, message: 'adopted; waiting for the desired state' });
    return runningContainerStatus(this.base, c, { ready: true });
  }

  /** The template's container spec, once the template is known. */
  private spec(): ContainerSpec | undefined {
    return this.template ? containerSpecOf(this.template) : undefined;
  }

  private graceSeconds(): number | undefined {
    return this.template?.terminationGracePeriodSeconds;
  }

  private clearTimers(): void {
    if (this.backoffTimer !== null) this.deps.clock.clearTimeout(this.backoffTimer);
    if (this.retryTimer !== null) this.deps.clock.clearTimeout(this.retryTimer);
    this.backoffTimer = null;
    this.retryTimer = null;
    this.restartDue = false;
  }

  private saveCounters(): void {
    if (!this.removedFlag && !this.detached) this.deps.counters?.save(this.name, { restarts: this.restarts, crashes: this.crashes, ...(this.unreportedStart ? { unreportedStart: this.unreportedStart } : {}) });
  }

  private pullReport(): PullReport {
    return pullReporter({
      event: (type, reason, message) => this.event(type, reason, message),
      pending: (message) => {
        if (!this.container?.running) this.setStatus(pendingContainerStatus(this.base, message));
      },
      log: this.log,
    });
  }

  private get base(): { restarts: number; templateHash: string } {
    return { restarts: this.restarts, templateHash: this.templateHash };
  }

  /** After detach nothing reaches the agent any more (its database may be closed). */
  private setStatus(next: InstanceStatus): void {
    if (this.removedFlag || this.detached) return;
    const changed = JSON.stringify(next) !== JSON.stringify(this.current);
    this.current = next;
    if (changed) this.deps.onStatus(this.name, { ...next });
  }

  private event(type: RuntimeEvent['type'], reason: string, message: string, process?: RuntimeEvent['process']): void {
    if (this.detached) return;
    this.deps.onEvent({ type, reason, message, instance: this.name, ...(process ? { process } : {}) });
  }
}
