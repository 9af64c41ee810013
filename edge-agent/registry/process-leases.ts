import type { InstanceStatus } from '../../shared/api/instance.js';
import type { AppService } from '../../shared/api/workload.js';
import type { Clock, Timer } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { Registry } from './records.js';

/** An instance this node should run, with the service it registers under (EdgeApp spec.service). */
export interface DesiredServiceInstance {
  name: string;
  service?: AppService;
}

export interface ProcessLeasesDeps {
  /** With batch(), one pass is one transaction. */
  registry: Registry & { batch?(fn: () => void): void };
  /** The instances the node should run; undefined while the desired state is not known yet (then nothing is removed). */
  desired(): DesiredServiceInstance[] | undefined;
  /** What the runtime runs now, by instance name. */
  statuses(): Map<string, InstanceStatus>;
  clock: Clock;
  log: Logger;
}

export interface ProcessLeasesOptions {
  /** The address registered for the node's instances (--advertise-address). */
  address: string;
  /** How often the whole set is reconciled (catches removed instances), ms. Default 1 000. */
  refreshMs?: number;
}

/**
 * Process-bound leases: every instance the agent runs whose template has a `service` is registered
 * (id = instance name), passing while ready and critical otherwise, and deregistered as soon as it
 * is no longer desired or no longer runs. Records with a process lease are owned by this class:
 * the HTTP API refuses to change them.
 */
export class ProcessLeases {
  private timer: Timer | undefined;
  /** Instances whose registration was refused (e.g. a name too long for an instance id): logged once, not every pass. */
  private readonly refused = new Set<string>();

  constructor(private readonly deps: ProcessLeasesDeps, private readonly options: ProcessLeasesOptions) {}

  start(): void {
    this.refresh();
    this.schedule();
  }

  stop(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Brings own process-lease records in line with the desired instances and the runtime's statuses. */
  refresh(): void {
    const run = (fn: () => void) => (this.deps.registry.batch ? this.deps.registry.batch(fn) : fn());
    try {
      run(() => this.reconcile());
    } catch (err) {
      this.deps.log.error({ err }, 'process-bound registrations could not be committed; the next pass tries again');
    }
  }

  private reconcile(): void {
    const desired = this.deps.desired();
    const statuses = this.deps.statuses();
    const wanted = new Map<string, { name: string; service: AppService; ready: boolean }>();
    for (const d of desired ?? []) {
      const status = statuses.get(d.name);
      if (!d.service || !status) continue;
      wanted.set(`${d.service.name}/${d.name}`, { name: d.name, service: d.service, ready: status.ready });
    }
    try {
      for (const r of this.deps.registry.recordsOf(this.deps.registry.node)) {
        if (r.instance?.lease.kind !== 'process' || wanted.has(r.key)) continue;
        const stillRuns = statuses.has(r.instance.lease.instance);
        if (desired === undefined && stillRuns) continue; // not known yet: keep what runs
        this.deps.registry.deregister(r.instance.service, r.instance.id);
      }
    } catch (err) {
      this.deps.log.error({ err }, 'process-bound registrations could not be removed');
    }
    for (const w of wanted.values()) this.upsert(w.name, w.service, w.ready);
  }

  /** One instance's status changed: its health follows readiness at once. */
  statusChanged(name: string, status: InstanceStatus): void {
    const d = this.deps.desired()?.find((x) => x.name === name);
    if (!d?.service) return;
    this.upsert(name, d.service, status.ready);
  }

  private upsert(name: string, service: AppService, ready: boolean): void {
    try {
      this.register(name, service, ready);
      this.refused.delete(name);
    } catch (err) {
      if (this.refused.has(name)) return;
      this.refused.add(name);
      this.deps.log.error({ err, instance: name, service: service.name }, 'instance could not be registered in the local registry');
    }
  }

  private register(name: string, service: AppService, ready: boolean): void {
    this.deps.registry.register({
      service: service.name,
      id: name,
      address: this.options.address,
      port: service.port,
      protocol: service.protocol ?? 'tcp',
      metadata: service.metadata ?? {},
      weight: service.weight ?? 100,
      health: ready ? 'passing' : 'critical',
      lease: { kind: 'process', instance: name },
    });
  }

  private schedule(): void {
    this.timer = this.deps.clock.setTimeout(() => {
      this.refresh();
      this.schedule();
    }, this.options.refreshMs ?? 1_000);
    this.timer.unref?.();
  }
}
