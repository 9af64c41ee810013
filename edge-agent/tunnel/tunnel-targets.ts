import type { Instance, InstanceStatus } from '../../shared/api/index.js';
import { workloadOf } from '../../shared/api/workload.js';
import { OutpostError } from '../../shared/errors.js';
import type { StreamTarget } from '../../shared/protocol/streams.js';
import { listeningPortsOfGroup } from './listening-ports.js';

export interface TunnelTargetDeps {
  /** The instances the agent's cache says this node runs. */
  instances(): Instance[];
  /** What the runtime runs now. */
  statuses(): Map<string, InstanceStatus>;
}

export interface TunnelTargetOptions {
  /** host:port addresses an operator allowed (`--tunnel-allow`); nothing else outside instances. */
  allow: string[];
}

/**
 * Agent-side safety (issue 8): a stream may reach only an instance this agent runs, or an address
 * the agent's operator allowed. The hub is trusted to authenticate the operator; this is the
 * node's own check, so a hub bug or a stolen hub cannot use the node as a pivot.
 */
export class TunnelTargets {
  constructor(private readonly deps: TunnelTargetDeps, private readonly options: TunnelTargetOptions) {}

  /** The instance, which must be in the node's desired set and known to its runtime. Throws NOT_FOUND. */
  instance(name: string | undefined): { instance: Instance; status: InstanceStatus | undefined } {
    if (!name) throw new OutpostError('BAD_REQUEST', 'this stream needs target.instance');
    const instance = this.deps.instances().find((i) => i.metadata.name === name);
    if (!instance) throw new OutpostError('NOT_FOUND', `instance ${name} not found on this node`);
    return { instance, status: this.deps.statuses().get(name) };
  }

  /** Where to dial for a TCP stream. Throws NOT_FOUND, FORBIDDEN, BAD_REQUEST naming the reason. */
  dialAddress(target: StreamTarget): { host: string; port: number } {
    if (target.address !== undefined) {
      if (!this.options.allow.includes(target.address)) throw new OutpostError('FORBIDDEN', `permission denied: address ${target.address} is not in this agent's --tunnel-allow list`);
      const i = target.address.lastIndexOf(':');
      return { host: target.address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(target.address.slice(i + 1)) };
    }
    const { instance, status } = this.instance(target.instance);
    if (target.port === undefined) throw new OutpostError('BAD_REQUEST', 'this stream needs target.port');
    if (status?.phase !== 'Running') throw new OutpostError('NOT_FOUND', `instance ${instance.metadata.name} is not running on this node (${status?.phase ?? 'not started'})`);
    const w = workloadOf(instance.spec.template);
    if (w.runtime === 'container') {
      if (instance.spec.template.hostNetwork) {
        // The node's own network: any port would reach the node's other services (the agent's
        // local API, other apps). Only a TCP port the container declares is its own.
        const declared = w.spec.ports?.some((p) => p.containerPort === target.port && (p.protocol ?? 'TCP') === 'TCP');
        if (!declared) throw new OutpostError('FORBIDDEN', `permission denied: port ${target.port} is not among the ports[].containerPort of ${instance.metadata.name} (hostNetwork)`);
        return { host: '127.0.0.1', port: target.port };
      }
      const mapping = w.spec.ports?.find((p) => p.containerPort === target.port && p.hostPort !== undefined && (p.protocol ?? 'TCP') === 'TCP');
      if (!mapping?.hostPort) throw new OutpostError('FORBIDDEN', `permission denied: container port ${target.port} of ${instance.metadata.name} is not published on the node (ports[].hostPort)`);
      const host = !mapping.hostIP || mapping.hostIP === '0.0.0.0' ? '127.0.0.1' : mapping.hostIP;
      return { host, port: mapping.hostPort };
    }
    // A process: the port must be one its own process group listens on, not any port of the node.
    if (status.pid === undefined || !listeningPortsOfGroup(status.pid).has(target.port)) {
      throw new OutpostError('FORBIDDEN', `permission denied: instance ${instance.metadata.name} does not listen on port ${target.port}`);
    }
    return { host: '127.0.0.1', port: target.port };
  }
}
