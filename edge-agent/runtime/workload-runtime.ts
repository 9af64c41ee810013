import type { AppTemplate, InstanceStatus } from '../../shared/api/index.js';
import { workloadOf } from '../../shared/api/workload.js';
import type { DesiredInstance, ProcessTemplate, RuntimeEvent } from './types.js';

/** One instance of the node as the cache holds it: the resolved app template. */
export interface AgentInstance {
  name: string;
  template: AppTemplate;
  templateHash: string;
  /** The instance's unit (its node's unit when it was placed; OUTPOST_UNIT in its environment). */
  unit?: string;
}

/** What the agent needs of a runtime; ProcessRuntime and ContainerRuntime both are one. */
export interface InstanceRuntime<T> {
  start(): Promise<void>;
  stop(): Promise<void>;
  stopAllInstances(): Promise<void>;
  /** The whole desired set of this runtime: what is missing starts, what is not listed stops. */
  reconcile(desired: T[]): void;
  onStatus(listener: (name: string, status: InstanceStatus) => void): void;
  onEvent(listener: (event: RuntimeEvent) => void): void;
  statuses(): Map<string, InstanceStatus>;
  /** False while what runs is not known yet (containers not listed): statuses() may then miss some. */
  hasAdopted?(): boolean;
}

/** A container instance for the container runtime. */
export interface DesiredContainer {
  name: string;
  template: AppTemplate;
  templateHash: string;
  /** Resolved from the template's envFrom (configs). */
  configEnv: Record<string, string>;
  /** config name -> host directory holding its files (for the template's configMounts). */
  configDirs: Record<string, string>;
}

/**
 * Resolves the EdgeConfigs an instance uses into env and directories on the node; throws an
 * Error naming the missing config when one is not (yet) in the cache.
 */
export interface ConfigResolver {
  resolve(instance: string, template: AppTemplate): { env: Record<string, string>; dirs: Record<string, string> };
}

/** The env variable that names a config's directory for a process: OUTPOST_CONFIG_DIR_<NAME>. */
export function configDirEnv(config: string): string {
  return `OUTPOST_CONFIG_DIR_${config.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * The template's process for the process runtime: template-wide settings copied in, config env
 * (configEnv: under the template env, never persisted), each mounted config's directory as an env
 * variable.
 */
export function flattenProcess(template: AppTemplate, configs: { env: Record<string, string>; dirs: Record<string, string> }): ProcessTemplate {
  const w = workloadOf(template);
  if (w.runtime !== 'process') throw new Error('not a process template');
  const p = w.spec;
  const dirEnv = Object.fromEntries(Object.entries(configs.dirs).map(([name, dir]) => [configDirEnv(name), dir]));
  const env = { ...dirEnv, ...p.env };
  return {
    command: p.command,
    ...(p.args && { args: p.args }),
    ...(Object.keys(env).length > 0 && { env }),
    ...(Object.keys(configs.env).length > 0 && { configEnv: { ...configs.env } }),
    ...(p.workingDir && { workingDir: p.workingDir }),
    ...(template.restartPolicy && { restartPolicy: template.restartPolicy }),
    ...(template.terminationGracePeriodSeconds !== undefined && { terminationGracePeriodSeconds: template.terminationGracePeriodSeconds }),
    ...(p.readinessProbe && { readinessProbe: p.readinessProbe }),
    ...(p.livenessProbe && { livenessProbe: p.livenessProbe }),
  };
}

function usesConfigs(t: AppTemplate): boolean {
  const w = workloadOf(t).spec;
  return (w.envFrom?.length ?? 0) > 0 || (w.configMounts?.length ?? 0) > 0;
}

/**
 * Routes each instance to the runtime its template names (processes or containers) and merges
 * what they report. An instance that cannot run here (no container runtime on this node, a
 * config not yet cached) is reported Failed with the reason, and nothing else is disturbed.
 */
export class WorkloadRuntime {
  private readonly statusListeners: Array<(name: string, status: InstanceStatus) => void> = [];
  private readonly unrunnable = new Map<string, InstanceStatus>();
  /** What each instance was last started with, to keep it running when its config disappears. */
  private lastGood = new Map<string, { entry: DesiredInstance | DesiredContainer; runtime: 'process' | 'container' }>();
  /** Instances kept running on a config that is gone (see configDirsInUse). */
  private keptWithoutConfig = new Set<string>();
  /** Called once when an instance starts running on without its config (the agent logs it). */
  onKept: ((instance: string, reason: string) => void) | undefined;

  constructor(
    private readonly processes: InstanceRuntime<DesiredInstance>,
    private readonly containers: InstanceRuntime<DesiredContainer> | undefined,
    private readonly configs: ConfigResolver | undefined,
    /** Why containers are unavailable, for the instance message (e.g. "no Docker or Podman socket at ..."). */
    private readonly noContainersReason = 'this node has no container runtime',
  ) {
    const forward = (name: string, status: InstanceStatus) => { for (const l of this.statusListeners) l(name, status); };
    processes.onStatus(forward);
    containers?.onStatus(forward);
  }

  async start(): Promise<void> {
    await this.processes.start();
    await this.containers?.start();
  }

  async stop(): Promise<void> {
    await this.containers?.stop();
    await this.processes.stop();
  }

  async stopAllInstances(): Promise<void> {
    await Promise.all([this.processes.stopAllInstances(), this.containers?.stopAllInstances()]);
  }

  reconcile(instances: AgentInstance[]): void {
    const procs: DesiredInstance[] = [];
    const ctrs: DesiredContainer[] = [];
    const failed = new Map<string, string>();
    const lastGood = new Map<string, { entry: DesiredInstance | DesiredContainer; runtime: 'process' | 'container' }>();
    const keptNow = new Set<string>();
    for (const i of instances) {
      try {
        const configs = usesConfigs(i.template) ? this.resolveConfigs(i) : { env: {}, dirs: {} };
        // The node may have changed unit since the agent started: the instance's own unit wins.
        const resolved = { env: { ...(i.unit ? { OUTPOST_UNIT: i.unit } : {}), ...configs.env }, dirs: configs.dirs };
        const w = workloadOf(i.template);
        if (w.runtime === 'process') {
          const entry = { name: i.name, template: flattenProcess(i.template, resolved), templateHash: i.templateHash };
          procs.push(entry);
          lastGood.set(i.name, { entry, runtime: 'process' });
        } else if (this.containers) {
          const entry = { name: i.name, template: i.template, templateHash: i.templateHash, configEnv: resolved.env, configDirs: resolved.dirs };
          ctrs.push(entry);
          lastGood.set(i.name, { entry, runtime: 'container' });
        } else failed.set(i.name, this.noContainersReason);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        // A config deleted (or not yet delivered again) under a running instance never stops it:
        // it keeps what it was started with, as a Kubernetes pod keeps a deleted ConfigMap's files.
        const kept = this.lastGood.get(i.name);
        const runs = this.runningHash(i.name) === i.templateHash;
        if ((kept && kept.entry.templateHash === i.templateHash) || runs) {
          if (kept && kept.entry.templateHash === i.templateHash) {
            if (kept.runtime === 'process') procs.push(kept.entry as DesiredInstance);
            else ctrs.push(kept.entry as DesiredContainer);
            lastGood.set(i.name, kept);
          } else if (workloadOf(i.template).runtime === 'process') {
            // After an agent restart nothing is remembered: the process runtime keeps what it adopted.
            procs.push({ name: i.name, template: flattenProcess(i.template, { env: {}, dirs: {} }), templateHash: i.templateHash, keep: true });
          } else if (this.containers) {
            // A container keeps its env and mounts from its creation; the same hash never recreates it.
            ctrs.push({ name: i.name, template: i.template, templateHash: i.templateHash, configEnv: {}, configDirs: {} });
          }
          keptNow.add(i.name);
          if (!this.keptWithoutConfig.has(i.name)) this.onKept?.(i.name, message);
          continue;
        }
        failed.set(i.name, message);
      }
    }
    this.lastGood = lastGood;
    this.keptWithoutConfig = keptNow;
    this.processes.reconcile(procs);
    this.containers?.reconcile(ctrs);
    for (const name of this.unrunnable.keys()) if (!failed.has(name)) this.unrunnable.delete(name);
    for (const [name, message] of failed) {
      const status: InstanceStatus = { phase: 'Failed', ready: false, restarts: 0, message: message.slice(0, 4000) };
      const before = this.unrunnable.get(name);
      this.unrunnable.set(name, status);
      if (before?.message !== status.message) for (const l of this.statusListeners) l(name, status);
    }
  }

  onStatus(listener: (name: string, status: InstanceStatus) => void): void {
    this.statusListeners.push(listener);
  }

  /** The template hash of what runs for `name` now, if anything runs. */
  private runningHash(name: string): string | undefined {
    const s = this.processes.statuses().get(name) ?? this.containers?.statuses().get(name);
    return s && (s.phase === 'Running' || s.phase === 'Pending') ? s.templateHash : undefined;
  }

  /** Host directories that running instances still use (their config may be gone): not to be pruned. */
  configDirsInUse(): Set<string> {
    const out = new Set<string>();
    for (const { entry, runtime } of this.lastGood.values()) {
      if (runtime === 'container') for (const d of Object.values((entry as DesiredContainer).configDirs)) out.add(d);
      else for (const [k, v] of Object.entries((entry as DesiredInstance).template.env ?? {})) if (k.startsWith('OUTPOST_CONFIG_DIR_')) out.add(v);
    }
    return out;
  }

  onEvent(listener: (event: RuntimeEvent) => void): void {
    this.processes.onEvent(listener);
    this.containers?.onEvent(listener);
  }

  hasAdopted(): boolean {
    return this.containers?.hasAdopted?.() ?? true;
  }

  statuses(): Map<string, InstanceStatus> {
    return new Map([...this.unrunnable, ...this.processes.statuses(), ...(this.containers?.statuses() ?? [])]);
  }

  private resolveConfigs(i: AgentInstance): { env: Record<string, string>; dirs: Record<string, string> } {
    if (!this.configs) throw new Error('this agent cannot resolve configs');
    return this.configs.resolve(i.name, i.template);
  }
}
