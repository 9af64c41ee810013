import type { AppTemplate, ContainerSpec } from '../../../shared/api/workload.js';
import { workloadOf } from '../../../shared/api/workload.js';
import type { DesiredContainer } from '../workload-runtime.js';
import type { ContainerCreateBody, PortBinding } from './engine-types.js';
import { parseCpu, parseMemory } from './quantities.js';

/** Labels on every container of the runtime: an agent (re)starting finds its own containers by them. */
export const LABEL_NODE = 'outpost.dev/node';
export const LABEL_INSTANCE = 'outpost.dev/instance';
export const LABEL_TEMPLATE_HASH = 'outpost.dev/template-hash';

/** Default termination grace period, seconds (as for processes). */
export const DEFAULT_GRACE_SECONDS = 10;

/** The engine's name of an instance's container; unique per node and instance. */
export function containerName(node: string, instance: string): string {
  return `outpost-${node}-${instance}`;
}

/** The template's container; throws when the template runs a process instead. */
export function containerSpecOf(template: AppTemplate): ContainerSpec {
  const w = workloadOf(template);
  if (w.runtime !== 'container') throw new Error('the template runs a process, not a container');
  return w.spec;
}

export interface ContainerConfigContext {
  node: string;
  /** Env under everything else (OUTPOST_NODE, OUTPOST_UNIT). */
  baseEnv: Record<string, string>;
}

/**
 * The create body of an instance's container. Env, lowest first: the node's base env and
 * OUTPOST_INSTANCE, the configs' env (envFrom), the template's env. Throws an Error naming the
 * field when the template asks for something this runtime cannot express (a config that was not
 * resolved, a bad quantity).
 */
export function containerCreateBody(d: DesiredContainer, ctx: ContainerConfigContext): ContainerCreateBody {
  const spec = containerSpecOf(d.template);
  const t = d.template;
  const env = { ...ctx.baseEnv, OUTPOST_INSTANCE: d.name, ...d.configEnv, ...spec.env };
  const body: ContainerCreateBody = {
    Image: spec.image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { [LABEL_NODE]: ctx.node, [LABEL_INSTANCE]: d.name, [LABEL_TEMPLATE_HASH]: d.templateHash },
    StopTimeout: t.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS,
    Tty: false,
    OpenStdin: false,
    HostConfig: { RestartPolicy: { Name: 'no' } },
  };
  // As in Kubernetes: command replaces the image's entrypoint, args its cmd.
  if (spec.command) body.Entrypoint = spec.command;
  if (spec.args) body.Cmd = spec.args;
  else if (spec.command) body.Cmd = [];
  if (spec.workingDir) body.WorkingDir = spec.workingDir;
  if (spec.stopSignal) body.StopSignal = spec.stopSignal;
  if (t.hostNetwork) body.HostConfig.NetworkMode = 'host';
  else body.Hostname = d.name.slice(0, 63);

  if (spec.ports && spec.ports.length > 0) {
    const exposed: Record<string, Record<string, never>> = {};
    const bindings: Record<string, PortBinding[]> = {};
    for (const p of spec.ports) {
      const key = `${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`;
      exposed[key] = {};
      if (p.hostPort !== undefined && !t.hostNetwork) {
        (bindings[key] ??= []).push({ HostIp: p.hostIP ?? '', HostPort: String(p.hostPort) });
      }
    }
    body.ExposedPorts = exposed;
    if (Object.keys(bindings).length > 0) body.HostConfig.PortBindings = bindings;
  }

  const binds: string[] = [];
  for (const m of spec.configMounts ?? []) {
    const dir = d.configDirs[m.config];
    if (dir === undefined) throw new Error(`configMounts: config "${m.config}" is not resolved on this node`);
    binds.push(`${dir}:${m.path ?? `/etc/outpost/${m.config}`}:ro`);
  }
  if (binds.length > 0) body.HostConfig.Binds = binds;

  if (spec.devices && spec.devices.length > 0) {
    body.HostConfig.Devices = spec.devices.map((dev) => ({ PathOnHost: dev.hostPath, PathInContainer: dev.containerPath ?? dev.hostPath, CgroupPermissions: dev.permissions ?? 'rwm' }));
  }

  const limits = spec.resources?.limits;
  if (limits?.cpu !== undefined) body.HostConfig.NanoCpus = parseCpu(limits.cpu);
  if (limits?.memory !== undefined) body.HostConfig.Memory = parseMemory(limits.memory);
  return body;
}

/** The IP address of a container on its network, or undefined (host network, or not running). */
export function containerAddress(inspect: { NetworkSettings?: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string } | null> | null } | null }): string | undefined {
  const ns = inspect.NetworkSettings;
  if (ns?.IPAddress) return ns.IPAddress;
  for (const n of Object.values(ns?.Networks ?? {})) if (n?.IPAddress) return n.IPAddress;
  return undefined;
}
