import { Counter, Gauge, type Registry } from 'prom-client';

/** Tunnel metrics of the hub (README "Metrics"). */
export function createTunnelMetrics(registry: Registry) {
  const r = [registry];
  return {
    streams: new Counter({ name: 'outpost_hub_tunnel_streams_total', help: 'Tunnel streams asked for, by kind and outcome (opened or the refusal code)', labelNames: ['kind', 'outcome'], registers: r }),
    open: new Gauge({ name: 'outpost_hub_tunnel_streams_open', help: 'Tunnel streams open now, by kind', labelNames: ['kind'], registers: r }),
    bytes: new Counter({ name: 'outpost_hub_tunnel_bytes_total', help: 'Stream data relayed, by direction (to-edge, from-edge)', labelNames: ['direction'], registers: r }),
  };
}

export type TunnelMetrics = ReturnType<typeof createTunnelMetrics>;
