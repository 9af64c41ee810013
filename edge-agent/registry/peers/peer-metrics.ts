import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Metrics of registry replication and failure detection (README "Metrics"). */
export function createPeerMetrics(registry: Registry) {
  const r = [registry];
  return {
    peers: new Gauge({ name: 'outpost_agent_registry_peers', help: 'Unit peers by SWIM status (alive, suspect, dead)', labelNames: ['status'], registers: r }),
    linksUp: new Gauge({ name: 'outpost_agent_registry_peer_links_up', help: 'Peer links (dialled by this agent) that are authenticated and up', registers: r }),
    suspicions: new Counter({ name: 'outpost_agent_registry_suspicions_total', help: 'Peers this agent began to suspect', registers: r }),
    falseSuspicions: new Counter({ name: 'outpost_agent_registry_false_suspicions_total', help: 'Suspicions lifted because the suspect answered in the same run', registers: r }),
    repairs: new Counter({ name: 'outpost_agent_registry_antientropy_repairs_total', help: 'Records changed here by digest anti-entropy (missed by push)', registers: r }),
    pushed: new Counter({ name: 'outpost_agent_registry_records_pushed_total', help: 'Own records pushed to peers', registers: r }),
    pushDropped: new Counter({ name: 'outpost_agent_registry_push_dropped_total', help: 'Queued pushes dropped (link down or queue full); anti-entropy repairs them', registers: r }),
    refused: new Counter({ name: 'outpost_agent_registry_peer_frames_refused_total', help: 'Peer frames or records refused as invalid or unauthenticated', registers: r }),
    peerVisible: new Histogram({
      name: 'outpost_agent_registry_peer_visible_seconds',
      help: 'Register-to-visible latency of a pushed record: origin send time to merged here (clocks of one machine in tests and bench)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
  };
}

export type PeerMetrics = ReturnType<typeof createPeerMetrics>;
