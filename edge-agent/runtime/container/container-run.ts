import { ProbeUnknown } from '../probes/check.js';
import type { ProbeTarget } from '../probes/prober.js';
import type { RuntimeEvent } from '../types.js';
import { containerAddress, LABEL_TEMPLATE_HASH } from './container-config.js';
import { EngineError, type DockerEngine } from './docker-engine.js';
import type { ContainerInspect } from './engine-types.js';

/** The container an instance has in the engine, and what is known of its current (or last) run. */
export interface ContainerRun {
  id: string;
  templateHash: string;
  running: boolean;
  /** Host pid of its main process while it runs. */
  pid: number | null;
  startedAt: string | null;
  startedAtMs: number;
  /** Its address on the engine's network; undefined on the host network. */
  address: string | undefined;
}

/** What `inspect` says of a container (an adopted one, or one just started). */
export function runFromInspect(inspect: ContainerInspect, nowMs: number): ContainerRun {
  const s = inspect.State;
  return {
    id: inspect.Id,
    templateHash: inspect.Config?.Labels?.[LABEL_TEMPLATE_HASH] ?? '',
    running: s.Running === true,
    pid: s.Pid ?? null,
    startedAt: validTime(s.StartedAt),
    startedAtMs: Date.parse(s.StartedAt ?? '') || nowMs,
    address: containerAddress(inspect),
  };
}

/** The event key of a run's start or end, so that the hub stores each once; none without a pid. */
export function runKey(c: ContainerRun, edge: 'start' | 'end'): RuntimeEvent['process'] {
  if (c.pid === null || c.pid <= 0 || c.startedAt === null) return undefined;
  return { pid: c.pid, startedAt: c.startedAt, edge };
}

/**
 * Probes of a container: httpGet/tcpSocket at 127.0.0.1 on the host network, else at its address;
 * exec through the engine. An engine that cannot be reached or answers 5xx says nothing about the
 * container: ProbeUnknown, so the attempt is not counted.
 */
export function containerProbeTarget(engine: DockerEngine, c: ContainerRun, hostNetwork: boolean): ProbeTarget {
  return {
    host: hostNetwork ? '127.0.0.1' : (c.address ?? '127.0.0.1'),
    exec: async (command, timeoutMs, signal) => {
      try {
        return await engine.exec(c.id, command, timeoutMs, signal);
      } catch (err) {
        if (err instanceof EngineError && (err.unreachable || err.status >= 500)) throw new ProbeUnknown(err.message, { cause: err });
        throw err;
      }
    },
  };
}

/** An engine time, or null for Go's zero time ("0001-01-01T00:00:00Z": never started or never finished). */
export function validTime(t: string | undefined): string | null {
  if (!t || t.startsWith('0001-')) return null;
  return t;
}
