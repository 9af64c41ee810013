import { join } from 'node:path';
import type { Instance, InstanceStatus } from '../../shared/api/index.js';
import type { RuntimeEvent } from '../runtime/types.js';
import type { AgentTunnel } from './agent-tunnel.js';
import { logsHandler } from './logs-handler.js';
import { portForwardHandler } from './port-forward-handler.js';
import { RunBoundaries } from './run-boundaries.js';
import { TunnelTargets } from './tunnel-targets.js';

export interface StreamHandlerDeps {
  instances(): Instance[];
  statuses(): Map<string, InstanceStatus>;
  onEvent(listener: (e: RuntimeEvent) => void): void;
}

export interface StreamHandlerOptions {
  /** The runtimes' log directory (`<data>/logs`). */
  logDir: string;
  /** host:port addresses streams may reach besides instances (`--tunnel-allow`). */
  allow: string[];
}

/** Registers the logs, port-forward and http stream handlers (exec registers its own). */
export function registerStreamHandlers(tunnel: AgentTunnel, deps: StreamHandlerDeps, options: StreamHandlerOptions): void {
  const targets = new TunnelTargets(deps, { allow: options.allow });
  const runs = new RunBoundaries((instance) => join(options.logDir, instance, 'current.log'));
  deps.onEvent((e) => {
    if (e.process?.edge === 'end') runs.ended(e.instance);
    else if (e.reason === 'Removed') runs.forget(e.instance);
  });
  tunnel.handle('logs', logsHandler(targets, runs, { logDir: options.logDir }));
  const forward = portForwardHandler(targets);
  tunnel.handle('port-forward', forward);
  tunnel.handle('http', forward);
}
