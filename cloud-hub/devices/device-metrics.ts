import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Hub metrics of devices (issue 5), on the hub's registry. `onlineCount` is read at scrape time. */
export function createDeviceMetrics(registry: Registry, onlineCount: () => number) {
  const r = [registry];
  return {
    online: new Gauge({ name: 'outpost_hub_devices_online', help: 'Devices whose last presence report said online', registers: r, collect() { this.set(onlineCount()); } }),
    telemetryStored: new Counter({ name: 'outpost_hub_telemetry_rows_stored_total', help: 'Telemetry rows stored', registers: r }),
    telemetryDuplicates: new Counter({ name: 'outpost_hub_telemetry_duplicates_dropped_total', help: 'Telemetry rows dropped as duplicates of stored ones (re-sent batches)', registers: r }),
    reportsRefused: new Counter({ name: 'outpost_hub_device_reports_refused_total', help: 'Device report items or reported properties refused or ignored, by reason', labelNames: ['reason'], registers: r }),
    twinConvergence: new Histogram({
      name: 'outpost_hub_twin_convergence_seconds',
      help: 'Seconds from a desired twin change (generation bump) to the device acknowledging it (observedDesired >= generation)',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
      registers: r,
    }),
    statusWrites: new Counter({ name: 'outpost_hub_device_status_writes_total', help: 'Device status writes (coalesced per report frame and device)', registers: r }),
  };
}

export type DeviceMetrics = ReturnType<typeof createDeviceMetrics>;
