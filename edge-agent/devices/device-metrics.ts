import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Outbox } from '../cache/outbox.js';

export function createDeviceMetrics(registry: Registry, outbox: Outbox) {
  const r = [registry];
  return {
    connected: new Gauge({ name: 'outpost_agent_mqtt_connected_devices', help: 'Devices with at least one MQTT connection', registers: r }),
    messagesIn: new Counter({ name: 'outpost_agent_mqtt_messages_in_total', help: 'Accepted device messages by type', labelNames: ['type'], registers: r }),
    messagesOut: new Counter({ name: 'outpost_agent_mqtt_messages_out_total', help: 'Messages the agent published to devices by type', labelNames: ['type'], registers: r }),
    rejected: new Counter({ name: 'outpost_agent_mqtt_rejected_total', help: 'Refused device connections, publishes and subscriptions by reason', labelNames: ['reason'], registers: r }),
    commitSeconds: new Histogram({ name: 'outpost_agent_mqtt_commit_seconds', help: 'Group commit of device messages into the outbox', buckets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1], registers: r }),
    twinPending: new Gauge({ name: 'outpost_agent_twin_pending_devices', help: 'Devices that have not acknowledged their current desired version', registers: r }),
    telemetryRows: new Gauge({ name: 'outpost_agent_outbox_telemetry_rows', help: 'Telemetry rows waiting in the outbox', registers: r, collect() { this.set(outbox.telemetryQueued().rows); } }),
    telemetryBytes: new Gauge({ name: 'outpost_agent_outbox_telemetry_bytes', help: 'Telemetry bytes waiting in the outbox', registers: r, collect() { this.set(outbox.telemetryQueued().bytes); } }),
    telemetryDropped: new Gauge({ name: 'outpost_agent_outbox_dropped_telemetry', help: 'Telemetry rows dropped by the outbox budget, ever', registers: r, collect() { this.set(outbox.droppedTelemetry()); } }),
  };
}

export type DeviceMetrics = ReturnType<typeof createDeviceMetrics>;
