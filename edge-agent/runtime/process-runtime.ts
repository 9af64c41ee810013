import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { InstanceStatus } from '../../shared/api/instance.js';
import { systemClock, type Clock, type Timer } from '../../shared/clock.js';
import type { LifecycleState } from '../../shared/lifecycle.js';
import type { Logger } from '../../shared/logger.js';
import { InstanceSupervisor, type SupervisorDeps } from './instance-supervisor.js';
import { hasProcFs } from './proc-stat.js';
import { RuntimeStateStore } from './runtime-state.js';
import { RuntimeListeners } from './runtime-listeners.js';
import type { DesiredInstance, ProcessRuntimeDeps, ProcessRuntimeOptions, RuntimeEvent, RuntimeSettings } from './types.js';

export type { DesiredInstance, ProcessRuntimeDeps, ProcessRuntimeOptions, RuntimeEvent } from './types.js';

/** Instance names become directory names: the API's NameSchema, which excludes '/' and '..'. */
const INSTANCE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Runs the app instances of this node as child processes that outlive the agent.
 *
 * Every instance is recorded in SQLite (`runtime_instances`) with its pid and /proc start time, so
 * that the next agent adopts the processes still running instead of starting duplicates.
 */
export class ProcessRuntime {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly settings: RuntimeSettings;
  private readonly instances = new Map<string, InstanceSupervisor>();
  private readonly listeners: RuntimeListeners;
  private lifecycle: LifecycleState = 'stopped';
  private pollTimer: Timer | null = null;
  private supervisorDeps: SupervisorDeps | null = null;

  constructor(
    private readonly deps: ProcessRuntimeDeps,
    options: ProcessRuntimeOptions,
  ) {
    this.log = deps.log.child({ component: 'runtime' });
    this.listeners = new RuntimeListeners(this.log);
    this.clock = deps.clock ?? systemClock;
    this.settings = {
      logDir: options.logDir,
      workDir: options.workDir ?? join(dirname(options.logDir), 'instances'),
      logMaxBytes: options.logMaxBytes ?? 10 * 1024 * 1024,
      logFiles: options.logFiles ?? 3,
      backoffInitialMs: options.restartBackoff?.initialMs ?? 1000,
      backoffMaxMs: options.restartBackoff?.maxMs ?? 5 * 60_000,
      backoffResetAfterMs: options.restartBackoff?.resetAfterMs ?? 60_000,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      baseEnv: { ...options.baseEnv },
      defaultPath: options.defaultPath ?? process.env.PATH,
    };
  }

  get state(): LifecycleState {
    return this.lifecycle;
  }

  /** Loads recorded instances from SQLite and re-adopts those still alive (same pid AND same start time). */
  async start(): Promise<void> {
    if (this.lifecycle !== 'stopped') return;
    this.lifecycle = 'starting';
    mkdirSync(this.settings.logDir, { recursive: true });
    const procFs = hasProcFs();
    if (!procFs) this.log.warn('no /proc: adopted processes are identified by pid only');
    const deps: SupervisorDeps = {
      store: new RuntimeStateStore(this.deps.db),
      log: this.log,
      clock: this.clock,
      settings: this.settings,
      procFs,
      onStatus: (name, status) => this.listeners.emitStatus(name, status),
      onEvent: (event) => this.listeners.emitEvent(event),
      onRemoved: (name) => this.instances.delete(name),
    };
    this.supervisorDeps = deps;
    for (const row of deps.store.list()) {
      try {
        this.instances.set(row.name, InstanceSupervisor.restore(deps, row));
      } catch (err) {
        this.log.error({ err, instance: row.name }, 'cannot restore a recorded instance; forgetting it');
        deps.store.delete(row.name);
      }
    }
    this.lifecycle = 'running';
    this.schedulePoll();
    this.log.info({ instances: this.instances.size }, 'process runtime started');
  }

  /**
   * Makes the running set match `desired`: starts missing instances, replaces those whose
   * templateHash changed, stops removed ones. Never blocks: stops run in the background, and an
   * instance being stopped is started again only once its old process is gone.
   */
  reconcile(desired: DesiredInstance[]): void {
    const deps = this.supervisorDeps;
    if (this.lifecycle !== 'running' || !deps) {
      this.log.warn({ state: this.lifecycle }, 'reconcile ignored: the runtime is not running');
      return;
    }
    const wanted = new Map<string, DesiredInstance>();
    for (const d of desired) {
      if (!INSTANCE_NAME.test(d.name) || d.name.length > 253) {
        this.listeners.emitEvent({ type: 'Warning', reason: 'InvalidName', message: 'instance name is not a valid name; ignored', instance: d.name });
        continue;
      }
      if (wanted.has(d.name)) this.log.warn({ instance: d.name }, 'instance listed twice; the last entry wins');
      wanted.set(d.name, d);
    }
    for (const d of [...wanted.values()]) {
      if (!d.keep) continue;
      // Keep only what already runs this template; never start anything from a kept entry.
      if (this.instances.get(d.name)?.templateHash !== d.templateHash) wanted.delete(d.name);
    }
    for (const d of wanted.values()) {
      if (d.keep) continue;
      this.guard(d.name, () => {
        let sup = this.instances.get(d.name);
        if (!sup) {
          sup = InstanceSupervisor.create(deps, d);
          this.instances.set(d.name, sup);
        }
        sup.setDesired(d);
      });
    }
    for (const [name, sup] of [...this.instances]) {
      if (!wanted.has(name)) this.guard(name, () => sup.setDesired(null));
    }
  }

  /** Stops supervising (timers, listeners). Does NOT stop instances: they outlive the agent. */
  async stop(): Promise<void> {
    if (this.lifecycle === 'stopped') return;
    this.lifecycle = 'stopping';
    if (this.pollTimer !== null) this.clock.clearTimeout(this.pollTimer);
    this.pollTimer = null;
    for (const sup of this.instances.values()) sup.detach();
    this.instances.clear();
    this.supervisorDeps = null;
    this.lifecycle = 'stopped';
  }

  /** Stops every instance (SIGTERM, then SIGKILL after its grace period) and forgets them; for uninstall and tests. */
  async stopAllInstances(): Promise<void> {
    const all = [...this.instances.values()];
    for (const sup of all) this.guard(sup.name, () => sup.setDesired(null));
    await Promise.all(all.map((sup) => sup.whenRemoved()));
  }

  /** Called on every status change of any instance (not on every poll). */
  onStatus(listener: (name: string, status: InstanceStatus) => void): void {
    this.listeners.onStatus(listener);
  }

  /** Called for Started, Exited, FailedStart, BackOff, Adopted, Stopped, Killed, Replaced, Removed, LogRotated, Unhealthy. */
  onEvent(listener: (event: RuntimeEvent) => void): void {
    this.listeners.onEvent(listener);
  }

  statuses(): Map<string, InstanceStatus> {
    return new Map([...this.instances].map(([name, sup]) => [name, sup.status()]));
  }

  /** Env and working directory of a running instance's process (for exec); undefined when none runs. */
  execContext(name: string): { env: Record<string, string>; cwd: string } | undefined {
    return this.instances.get(name)?.execContext();
  }

  /** The current log file of an instance (stdout and stderr). */
  logPath(name: string): string {
    return join(this.settings.logDir, name, 'current.log');
  }

  private schedulePoll(): void {
    const timer = this.clock.setTimeout(() => {
      if (this.pollTimer !== timer) return;
      for (const sup of this.instances.values()) this.guard(sup.name, () => sup.poll());
      this.schedulePoll();
    }, this.settings.pollIntervalMs);
    timer.unref?.();
    this.pollTimer = timer;
  }


  /** One instance's failure must not stop the others, nor throw into a timer. */
  private guard(name: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err, instance: name }, 'instance supervision failed');
    }
  }
}
