import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Typed handles to every hub metric; created once per process on its own registry. */
export function createHubMetrics(registry: Registry) {
  const r = [registry];
  return {
    sessions: new Gauge({ name: 'outpost_hub_sessions', help: 'Connected agent sessions', registers: r }),
    sessionsOpened: new Counter({ name: 'outpost_hub_sessions_opened_total', help: 'Agent sessions accepted', registers: r }),
    authFailures: new Counter({ name: 'outpost_hub_auth_failures_total', help: 'Refused agent connections and joins', labelNames: ['reason'], registers: r }),
    protocolErrors: new Counter({ name: 'outpost_hub_protocol_errors_total', help: 'Sessions closed for an invalid frame', registers: r }),
    framesIn: new Counter({ name: 'outpost_hub_frames_in_total', help: 'Frames received from agents', labelNames: ['type'], registers: r }),
    framesOut: new Counter({ name: 'outpost_hub_frames_out_total', help: 'Frames sent to agents', labelNames: ['type'], registers: r }),
    syncObjects: new Counter({ name: 'outpost_hub_sync_objects_total', help: 'Objects sent to agents in sync frames', registers: r }),
    resyncs: new Counter({ name: 'outpost_hub_resyncs_total', help: 'Sessions that fell behind their buffer limit and were resynced', registers: r }),
    reportsStored: new Counter({ name: 'outpost_hub_reports_stored_total', help: 'Outbox items stored', labelNames: ['kind'], registers: r }),
    reportsRejected: new Counter({ name: 'outpost_hub_reports_rejected_total', help: 'Outbox items refused (authorization or validation)', labelNames: ['kind', 'code'], registers: r }),
    admissionQueue: new Gauge({ name: 'outpost_hub_admission_queue', help: 'Agent sessions waiting for admission', registers: r }),
    revisionsBehind: new Gauge({ name: 'outpost_hub_revisions_behind', help: 'Sum over sessions of (hub revision - acknowledged revision)', registers: r }),
    apiRequests: new Counter({ name: 'outpost_hub_api_requests_total', help: 'HTTP API requests', labelNames: ['method', 'code'], registers: r }),
    apiDuration: new Histogram({ name: 'outpost_hub_api_request_duration_seconds', help: 'HTTP API latency', labelNames: ['method'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2], registers: r }),
    schedulerRuns: new Counter({ name: 'outpost_hub_scheduler_runs_total', help: 'Scheduler reconcile passes', registers: r }),
    nodes: new Gauge({ name: 'outpost_hub_nodes', help: 'Edge nodes by phase', labelNames: ['phase'], registers: r }),
  };
}

export type HubMetrics = ReturnType<typeof createHubMetrics>;
