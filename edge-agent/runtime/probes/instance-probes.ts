import type { Probe } from '../../../shared/api/workload.js';
import type { Clock } from '../../../shared/clock.js';
import { Prober, type ProbeResult, type ProbeTarget } from './prober.js';

export interface InstanceProbesOptions {
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  target: ProbeTarget;
  clock: Clock;
  /** When the process or container started (clock ms; an adopted one started before the probes): initialDelaySeconds counts from then. */
  startedAtMs?: number;
  /** The readiness result changed (see Prober's onChange). */
  onReadiness: (result: ProbeResult) => void;
  /** The liveness probe reached its failureThreshold: the process must be restarted. */
  onLivenessFailure: (result: ProbeResult) => void;
}

/** The readiness and liveness probes of one process (or container) run: new ones for every run. */
export class InstanceProbes {
  private readonly readiness: Prober | null;
  private readonly liveness: Prober | null;

  private constructor(options: InstanceProbesOptions) {
    const { target, clock, startedAtMs } = options;
    this.readiness = options.readinessProbe ? new Prober('readiness', options.readinessProbe, target, options.onReadiness, clock, startedAtMs) : null;
    this.liveness = options.livenessProbe
      ? new Prober('liveness', options.livenessProbe, target, (r) => { if (!r.passing) options.onLivenessFailure(r); }, clock, startedAtMs)
      : null;
  }

  /** Null when the template has no probe. */
  static forTemplate(options: InstanceProbesOptions): InstanceProbes | null {
    return options.readinessProbe || options.livenessProbe ? new InstanceProbes(options) : null;
  }

  start(): void {
    this.readiness?.start();
    this.liveness?.start();
  }

  stop(): void {
    this.readiness?.stop();
    this.liveness?.stop();
  }

  /** The readiness verdict; null without a readiness probe (ready = running). */
  readinessResult(): ProbeResult | null {
    return this.readiness?.result ?? null;
  }
}
