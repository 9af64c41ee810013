import { mkdirSync } from 'node:fs';
import type { Database } from 'better-sqlite3';
import type { InstanceStatus } from '../../../shared/api/instance.js';
import { systemClock, type Clock, type Timer } from '../../../shared/clock.js';
import type { LifecycleState } from '../../../shared/lifecycle.js';
import type { Logger } from '../../../shared/logger.js';
import type { RuntimeEvent } from '../types.js';
import type { DesiredContainer, InstanceRuntime } from '../workload-runtime.js';
import { LABEL_INSTANCE, LABEL_NODE } from './container-config.js';
import { ContainerCounterStore } from './container-counters.js';
import { pendingContainerStatus, shortId } from './container-status.js';
import type { ContainerSettings, ContainerSupervisorDeps } from './container-deps.js';
import { ContainerSupervisor } from './container-supervisor.js';
import type { DockerEngine } from './docker-engine.js';
import { RuntimeListeners } from '../runtime-listeners.js';
import type { ContainerSummary } from './engine-types.js';

/** Instance names become directory and container names: the API's NameSchema. */
const INSTANCE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** How long start() waits for the first listing of this node's containers. */
const ADOPT_WAIT_MS = 5000;

export interface ContainerRuntimeOptions {
  /** This node's name; every container gets it as label outpost.dev/node, and the runtime adopts only those. */
  node: string;
  /** Directory of instance logs: `<logDir>/<instance>/current.log` plus rotated `current.log.N`, as for processes. */
  logDir: string;
  /** Env under every container's own (the agent sets OUTPOST_NODE, OUTPOST_UNIT; the runtime adds OUTPOST_INSTANCE). */
  baseEnv?: Record<string, string>;
  /** Bytes of a log file before it is rotated; default 10 MiB. */
  logMaxBytes?: number;
  /** Rotated log files kept per instance; default 3. */
  logFiles?: number;
  /** Crash-loop back-off, as for processes: defaults 1 s, 5 min, reset after 60 s of running. */
  restartBackoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
  /** How often this node's containers are listed (exits, containers removed behind our back), ms; default 1000. */
  pollIntervalMs?: number;
  /** An image pull that reports no progress for this long is aborted (and retried with back-off), ms; default 2 min. */
  pullStallTimeoutMs?: number;
}

export interface ContainerRuntimeDeps {
  /** The engine client; the runtime owns it and closes it on stop. */
  engine: DockerEngine;
  /** The agent's runtime database, for restart counters (`runtime_containers`); without it they restart at 0 with the agent. */
  db?: Database;
  log: Logger;
  clock?: Clock;
}

/**
 * Runs this node's container instances through the Docker Engine API (Docker or Podman).
 *
 * The engine is the record of what runs: every container carries the node, instance and template
 * hash as labels, and a starting runtime adopts the containers labelled with its node instead of
 * creating new ones. Until that first listing succeeds (engine not reachable yet), it creates
 * nothing: it would duplicate what may already run.
 */
export class ContainerRuntime implements InstanceRuntime<DesiredContainer> {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly settings: ContainerSettings;
  private readonly pollIntervalMs: number;
  private readonly instances = new Map<string, ContainerSupervisor>();
  private readonly listeners: RuntimeListeners;
  private lifecycle: LifecycleState = 'stopped';
  private pollTimer: Timer | null = null;
  private supervisorDeps: ContainerSupervisorDeps | null = null;
  /** False until this node's containers were listed and adopted. */
  private adopted = false;
  private adoptError = '';
  /** The desired set received before adoption; applied right after it. */
  private pendingDesired: DesiredContainer[] | null = null;
  private readonly waiting = new Map<string, InstanceStatus>();
  private polling = false;
  private adopting: Promise<void> | null = null;

  constructor(
    private readonly deps: ContainerRuntimeDeps,
    options: ContainerRuntimeOptions,
  ) {
    this.log = deps.log.child({ component: 'container-runtime' });
    this.listeners = new RuntimeListeners(this.log);
    this.clock = deps.clock ?? systemClock;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.settings = {
      node: options.node,
      baseEnv: { ...options.baseEnv },
      logDir: options.logDir,
      logMaxBytes: options.logMaxBytes ?? 10 * 1024 * 1024,
      logFiles: options.logFiles ?? 3,
      backoffInitialMs: options.restartBackoff?.initialMs ?? 1000,
      backoffMaxMs: options.restartBackoff?.maxMs ?? 5 * 60_000,
      backoffResetAfterMs: options.restartBackoff?.resetAfterMs ?? 60_000,
      pullStallTimeoutMs: options.pullStallTimeoutMs ?? 120_000,
    };
  }

  get state(): LifecycleState {
    return this.lifecycle;
  }

  /**
   * Adopts this node's containers, waiting for that at most `ADOPT_WAIT_MS`: a hung engine must
   * not hold up the agent (nor its processes). Meanwhile desired containers wait for the adoption;
   * when the engine cannot be reached, it is tried again on every poll. Waiting a little matters:
   * the agent keeps what runs when its cache is empty only if statuses() shows what runs.
   */
  async start(): Promise<void> {
    if (this.lifecycle !== 'stopped') return;
    this.lifecycle = 'starting';
    mkdirSync(this.settings.logDir, { recursive: true });
    this.supervisorDeps = {
      engine: this.deps.engine,
      counters: this.deps.db ? new ContainerCounterStore(this.deps.db) : null,
      log: this.log,
      clock: this.clock,
      settings: this.settings,
      onStatus: (name, status) => this.listeners.emitStatus(name, status),
      onEvent: (event) => this.listeners.emitEvent(event),
      onRemoved: (name) => this.instances.delete(name),
    };
    this.lifecycle = 'running';
    this.schedulePoll();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.adoptOnce(), new Promise((resolve) => (timer = setTimeout(resolve, ADOPT_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** Makes the containers match `desired`; never blocks (engine calls run in the background). */
  reconcile(desired: DesiredContainer[]): void {
    if (this.lifecycle !== 'running' || !this.supervisorDeps) {
      this.log.warn({ state: this.lifecycle }, 'reconcile ignored: the container runtime is not running');
      return;
    }
    const wanted = new Map<string, DesiredContainer>();
    for (const d of desired) {
      if (!INSTANCE_NAME.test(d.name) || d.name.length > 253) {
        this.listeners.emitEvent({ type: 'Warning', reason: 'InvalidName', message: 'instance name is not a valid name; ignored', instance: d.name });
        continue;
      }
      wanted.set(d.name, d);
    }
    if (!this.adopted) {
      this.pendingDesired = [...wanted.values()];
      this.reportWaiting();
      return;
    }
    const deps = this.supervisorDeps;
    for (const d of wanted.values()) {
      this.guard(d.name, () => {
        let sup = this.instances.get(d.name);
        if (!sup) {
          sup = ContainerSupervisor.create(deps, d);
          this.instances.set(d.name, sup);
        }
        sup.setDesired(d);
      });
    }
    for (const [name, sup] of [...this.instances]) if (!wanted.has(name)) this.guard(name, () => sup.setDesired(null));
  }

  /** Stops supervising (timers, probes, log copies, the engine client). Containers keep running for the next agent. */
  async stop(): Promise<void> {
    if (this.lifecycle === 'stopped') return;
    this.lifecycle = 'stopping';
    if (this.pollTimer !== null) this.clock.clearTimeout(this.pollTimer);
    this.pollTimer = null;
    for (const sup of this.instances.values()) sup.detach();
    this.instances.clear();
    this.supervisorDeps = null;
    this.deps.engine.close();
    this.lifecycle = 'stopped';
  }

  /** Stops and removes every container of this node's instances; for uninstall, the playground and tests. */
  async stopAllInstances(): Promise<void> {
    const all = [...this.instances.values()];
    for (const sup of all) this.guard(sup.name, () => sup.setDesired(null));
    await Promise.all(all.map((sup) => sup.whenRemoved()));
  }

  onStatus(listener: (name: string, status: InstanceStatus) => void): void {
    this.listeners.onStatus(listener);
  }

  /** Started, Exited, Adopted, Pulling, Pulled, FailedPull, FailedStart, BackOff, Unhealthy, Stopped, Replaced, Removed, LogRotated, EngineError. */
  onEvent(listener: (event: RuntimeEvent) => void): void {
    this.listeners.onEvent(listener);
  }

  /**
   * Whether this node's containers were listed (and adopted). Until then statuses() does not show
   * what runs, so an empty statuses() says nothing about what an empty cache would remove.
   */
  hasAdopted(): boolean {
    return this.adopted;
  }

  /** The engine and the running container of an instance (for exec); undefined when none runs. */
  execTarget(name: string): { engine: DockerEngine; containerId: string } | undefined {
    const containerId = this.instances.get(name)?.runningContainerId();
    return containerId === undefined ? undefined : { engine: this.deps.engine, containerId };
  }

  statuses(): Map<string, InstanceStatus> {
    if (!this.adopted) return new Map([...this.waiting].map(([n, s]) => [n, { ...s }]));
    return new Map([...this.instances].map(([name, sup]) => [name, sup.status()]));
  }

  /** One adoption at a time; never rejects. */
  private adoptOnce(): Promise<void> {
    this.adopting ??= this.adopt().finally(() => {
      this.adopting = null;
    });
    return this.adopting;
  }

  /**
   * Lists this node's containers and supervises them again. Several for one instance (an agent
   * killed in the middle of a replacement): the running one, else the newest, is kept.
   */
  private async adopt(): Promise<void> {
    const deps = this.supervisorDeps;
    if (!deps || this.adopted) return;
    let list: ContainerSummary[];
    try {
      list = await this.deps.engine.listContainers([`${LABEL_NODE}=${this.settings.node}`]);
    } catch (err) {
      this.adoptError = err instanceof Error ? err.message : String(err);
      this.log.warn({ err, socket: this.deps.engine.socketPath }, 'cannot list containers; will retry, and start none until then');
      this.reportWaiting();
      return;
    }
    const groups = new Map<string, ContainerSummary[]>();
    for (const c of list) {
      const instance = c.Labels?.[LABEL_INSTANCE];
      if (!instance || !INSTANCE_NAME.test(instance)) {
        this.log.warn({ containerId: c.Id }, 'container with this node\'s label but no valid instance label; left alone');
        continue;
      }
      groups.set(instance, [...(groups.get(instance) ?? []), c]);
    }
    for (const [instance, containers] of groups) {
      try {
        const [keep, ...extra] = containers.sort((a, b) => Number(b.State === 'running') - Number(a.State === 'running') || (b.Created ?? 0) - (a.Created ?? 0));
        for (const c of extra) {
          this.log.warn({ instance, containerId: c.Id }, 'removing a second container of the same instance');
          await this.deps.engine.removeContainer(c.Id);
        }
        const inspect = keep ? await this.deps.engine.inspectContainer(keep.Id) : undefined;
        if (inspect && this.lifecycle === 'running') this.instances.set(instance, ContainerSupervisor.adopt(deps, instance, inspect));
      } catch (err) {
        this.adoptError = err instanceof Error ? err.message : String(err);
        this.log.warn({ err, instance }, 'adopting containers failed; will retry');
        for (const sup of this.instances.values()) sup.detach();
        this.instances.clear();
        return;
      }
    }
    if (this.lifecycle !== 'running') return;
    this.adopted = true;
    this.waiting.clear();
    this.log.info({ socket: this.deps.engine.socketPath, adopted: this.instances.size }, 'container runtime adopted this node\'s containers');
    const pending = this.pendingDesired;
    this.pendingDesired = null;
    if (pending) this.reconcile(pending);
  }

  /** While the engine cannot be listed: the desired instances are Pending, and the status says why. */
  private reportWaiting(): void {
    if (!this.adoptError) return;
    const message = `waiting for the container engine at ${this.deps.engine.socketPath}: ${this.adoptError}`;
    const names = new Set((this.pendingDesired ?? []).map((d) => d.name));
    for (const name of this.waiting.keys()) if (!names.has(name)) this.waiting.delete(name);
    for (const d of this.pendingDesired ?? []) {
      const status = pendingContainerStatus({ restarts: 0, templateHash: d.templateHash }, message);
      if (JSON.stringify(this.waiting.get(d.name)) === JSON.stringify(status)) continue;
      this.waiting.set(d.name, status);
      this.listeners.emitStatus(d.name, status);
    }
  }

  private schedulePoll(): void {
    const timer = this.clock.setTimeout(() => {
      if (this.pollTimer !== timer) return;
      void this.poll().finally(() => {
        if (this.pollTimer === timer) this.schedulePoll();
      });
    }, this.pollIntervalMs);
    timer.unref?.();
    this.pollTimer = timer;
  }

  /** Never rejects. One list call per period for all instances: exits and vanished containers. */
  private async poll(): Promise<void> {
    if (this.polling || this.lifecycle !== 'running') return;
    this.polling = true;
    try {
      if (!this.adopted) return await this.adoptOnce();
      const list = await this.deps.engine.listContainers([`${LABEL_NODE}=${this.settings.node}`]);
      if (this.lifecycle !== 'running') return;
      const byInstance = new Map<string, ContainerSummary>();
      for (const c of list) {
        const instance = c.Labels?.[LABEL_INSTANCE];
        // As at adoption: a container without a valid instance label is not ours to remove.
        if (!instance || !INSTANCE_NAME.test(instance)) continue;
        const sup = this.instances.get(instance);
        if (sup) byInstance.set(instance, c);
        else await this.removeOrphan(instance, c);
      }
      for (const sup of this.instances.values()) {
        this.guard(sup.name, () => {
          sup.observe(byInstance.get(sup.name));
          sup.poll();
        });
      }
    } catch (err) {
      this.log.debug({ err }, 'listing containers failed');
    } finally {
      this.polling = false;
    }
  }

  /** A container of this node for an instance nobody supervises (a removal that failed half-way): removed. */
  private async removeOrphan(instance: string, c: ContainerSummary): Promise<void> {
    this.log.warn({ instance, containerId: c.Id }, 'removing a container of an instance this node no longer runs');
    try {
      await this.deps.engine.removeContainer(c.Id);
      this.listeners.emitEvent({ type: 'Normal', reason: 'Removed', message: `removed leftover container ${shortId(c.Id)}`, instance });
    } catch (err) {
      this.log.warn({ err, instance }, 'removing a leftover container failed');
    }
  }


  private guard(name: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err, instance: name }, 'container supervision failed');
    }
  }
}
