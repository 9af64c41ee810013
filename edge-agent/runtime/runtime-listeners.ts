import type { InstanceStatus } from '../../shared/api/instance.js';
import type { Logger } from '../../shared/logger.js';
import type { RuntimeEvent } from './types.js';

/**
 * The status and event listeners of a runtime. A failing listener is logged and never stops
 * the others or the runtime; each gets its own copy of what it is given.
 */
export class RuntimeListeners {
  private readonly statusListeners: Array<(name: string, status: InstanceStatus) => void> = [];
  private readonly eventListeners: Array<(event: RuntimeEvent) => void> = [];

  constructor(private readonly log: Logger) {}

  onStatus(listener: (name: string, status: InstanceStatus) => void): void {
    this.statusListeners.push(listener);
  }

  onEvent(listener: (event: RuntimeEvent) => void): void {
    this.eventListeners.push(listener);
  }

  emitStatus(name: string, status: InstanceStatus): void {
    for (const listener of this.statusListeners) {
      try {
        listener(name, { ...status });
      } catch (err) {
        this.log.error({ err, instance: name }, 'status listener failed');
      }
    }
  }

  emitEvent(event: RuntimeEvent): void {
    this.log.info({ instance: event.instance, reason: event.reason }, event.message);
    for (const listener of this.eventListeners) {
      try {
        listener({ ...event });
      } catch (err) {
        this.log.error({ err, instance: event.instance }, 'event listener failed');
      }
    }
  }
}
