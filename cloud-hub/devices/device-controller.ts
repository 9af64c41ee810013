import type { Device } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ObjectCache } from '../cache/object-cache.js';
import type { Store } from '../store/store.js';
import { syncModelWarning } from './model-message.js';
import type { TelemetryStore } from './telemetry-store.js';
import type { TwinConvergence } from './twin-convergence.js';

const MAX_PENDING = 100_000;

/**
 * Keeps what hangs off a Device in step: a deleted device loses its credential and telemetry; a
 * model applied, changed or deleted updates the model warning of the devices that use it.
 * Work is serialized through one chain; the pending set is bounded.
 */
export class DeviceController {
  private unsubscribe: (() => void) | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly pending = new Set<string>();
  private state: 'stopped' | 'running' = 'stopped';

  constructor(private readonly deps: { store: Store; cache: ObjectCache; telemetry: TelemetryStore; log: Logger; convergence?: TwinConvergence }) {}

  start(): void {
    this.state = 'running';
    this.unsubscribe = this.deps.cache.onChange((e) => {
      const { object } = e;
      if (object.kind === 'Device' && e.type === 'DELETED') {
        this.deps.convergence?.forget(object.metadata.name);
        this.enqueue(`deleted:${object.metadata.name}`);
      } else if (object.kind === 'Device') this.desiredChanged(e.oldObject as Device | undefined, object as Device);
      else if (object.kind === 'DeviceModel') {
        for (const d of this.deps.cache.list('Device') as Device[]) if (d.spec.model === object.metadata.name) this.enqueue(`warn:${d.metadata.name}`);
      }
    });
    // A hub stopped between deleting a device and its credential (or telemetry) finishes the job now.
    const { cache, telemetry } = this.deps;
    for (const c of cache.list('DeviceCredential')) if (!cache.get('Device', c.metadata.name)) this.enqueue(`deleted:${c.metadata.name}`);
    for (const name of telemetry.devices()) if (!cache.get('Device', name)) this.enqueue(`deleted:${name}`);
    for (const d of cache.list('Device')) this.enqueue(`warn:${d.metadata.name}`);
  }

  /** A change of the desired values starts the convergence clock of the new generation. */
  private desiredChanged(before: Device | undefined, after: Device): void {
    const desired = JSON.stringify(after.spec.desired ?? {});
    if (desired === JSON.stringify(before?.spec.desired ?? {}) || after.metadata.generation === undefined) return;
    if (before?.metadata.generation === after.metadata.generation) return;
    this.deps.convergence?.desiredChanged(after.metadata.name, after.metadata.generation);
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.unsubscribe?.();
    await this.chain;
  }

  /** Resolves once queued work is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  private enqueue(task: string): void {
    if (this.pending.has(task) || this.pending.size >= MAX_PENDING) return;
    this.pending.add(task);
    this.chain = this.chain.then(async () => {
      this.pending.delete(task);
      if (this.state !== 'running') return;
      try {
        await this.run(task);
      } catch (err) {
        this.deps.log.error({ err, task }, 'device controller task failed');
      }
    });
  }

  private async run(task: string): Promise<void> {
    const [what, name = ''] = task.split(/:(.*)/s);
    if (what === 'warn') {
      await syncModelWarning(this.deps.store, name);
      return;
    }
    // A device re-created meanwhile keeps its new credential.
    if (await this.deps.store.get('Device', name)) return;
    this.deps.telemetry.deleteDevice(name);
    await this.deps.store.delete('DeviceCredential', name).catch((err: unknown) => {
      if (!isOutpostError(err, 'NOT_FOUND')) throw err;
    });
  }
}
