import { Counter, Gauge, type Registry } from 'prom-client';

/** Metrics of `outpost exec` on the agent. */
export function createExecMetrics(registry: Registry) {
  const r = [registry];
  return {
    running: new Gauge({ name: 'outpost_agent_exec_sessions', help: 'Exec sessions running now', labelNames: ['runtime'], registers: r }),
    started: new Counter({ name: 'outpost_agent_exec_sessions_total', help: 'Exec sessions started', labelNames: ['runtime', 'tty'], registers: r }),
    refused: new Counter({ name: 'outpost_agent_exec_refused_total', help: 'Exec streams refused before a command started, by error code', labelNames: ['code'], registers: r }),
  };
}

export type ExecMetrics = ReturnType<typeof createExecMetrics>;
