import type { InstanceStatus } from '../../../shared/api/instance.js';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import type { RuntimeEvent } from '../types.js';
import type { ContainerCounterStore } from './container-counters.js';
import type { DockerEngine } from './docker-engine.js';

/** The container runtime's options with every default applied. */
export interface ContainerSettings {
  node: string;
  baseEnv: Record<string, string>;
  logDir: string;
  logMaxBytes: number;
  logFiles: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  backoffResetAfterMs: number;
  pullStallTimeoutMs: number;
}

/** What a ContainerSupervisor gets from its runtime. */
export interface ContainerSupervisorDeps {
  engine: DockerEngine;
  counters: ContainerCounterStore | null;
  log: Logger;
  clock: Clock;
  settings: ContainerSettings;
  onStatus: (name: string, status: InstanceStatus) => void;
  onEvent: (event: RuntimeEvent) => void;
  onRemoved: (name: string) => void;
}
