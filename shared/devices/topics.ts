// The MQTT topics of a device (issue 5). A device may publish and subscribe only under its own
// prefix `outpost/v1/devices/<name>/`. Payloads are JSON.

export const TOPIC_ROOT = 'outpost/v1/devices';

export const topics = {
  /** device -> agent. `{"ts"?: ISO time or epoch ms, ...values}`; stamped on arrival without ts. */
  telemetry: (device: string) => `${TOPIC_ROOT}/${device}/telemetry`,
  /** device -> agent. `{"values": {prop: value}, "version"?: n, "observedDesired"?: n, "ts"?: ...}` */
  reported: (device: string) => `${TOPIC_ROOT}/${device}/twin/reported`,
  /** agent -> device, retained. `{"version": n, "values": {prop: value}}` (version = Device generation) */
  desired: (device: string) => `${TOPIC_ROOT}/${device}/twin/desired`,
  /** device -> agent: any payload. The agent answers on `getResponse`. */
  get: (device: string) => `${TOPIC_ROOT}/${device}/twin/get`,
  /** agent -> device. `{"desired": {"version", "values"}, "reported": {prop: value}}` */
  getResponse: (device: string) => `${TOPIC_ROOT}/${device}/twin/get/response`,
  /** agent -> device. `{"topic", "error", "reason", "at"}`: why a message of the device was refused. */
  errors: (device: string) => `${TOPIC_ROOT}/${device}/errors`,
  /**
   * device -> agent, `--mqtt-url` mode: `online` published retained at connect, `offline` as the
   * retained last will (and before a clean disconnect). The embedded broker knows presence from
   * the connection itself.
   */
  presence: (device: string) => `${TOPIC_ROOT}/${device}/presence`,
};

/** The device a topic belongs to, or undefined when it is outside the devices tree. */
export function deviceOfTopic(topic: string): string | undefined {
  const prefix = `${TOPIC_ROOT}/`;
  if (!topic.startsWith(prefix)) return undefined;
  const name = topic.slice(prefix.length).split('/')[0];
  return name || undefined;
}

/** Reasons a device message is refused (errors topic `reason`, metric label). */
export type RejectReason = 'not-json' | 'unknown-property' | 'wrong-type' | 'out-of-range' | 'read-only' | 'not-allowed' | 'too-large' | 'stale-version';
