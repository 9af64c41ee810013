import { topics } from '../../shared/devices/topics.js';

// What a device may do on the broker: publish only its own telemetry, reported twin and get
// request; subscribe only to its own desired twin, get responses and errors (exact topics, no
// wildcards, so a device can never match another device's topics).

// A device may also publish on its presence topic (the --mqtt-url convention), so one firmware
// works with both brokers; the embedded broker takes presence from the connection and ignores it.
export type PublishKind = 'telemetry' | 'reported' | 'get' | 'presence';

/** What a device's publish on `topic` is, or undefined when it is not allowed. */
export function publishKind(device: string, topic: string): PublishKind | undefined {
  if (topic === topics.telemetry(device)) return 'telemetry';
  if (topic === topics.reported(device)) return 'reported';
  if (topic === topics.get(device)) return 'get';
  if (topic === topics.presence(device)) return 'presence';
  return undefined;
}

export function maySubscribe(device: string, topic: string): boolean {
  return topic === topics.desired(device) || topic === topics.getResponse(device) || topic === topics.errors(device);
}

/** A client id a device may use: its own name, or its name followed by `-` and anything. */
export function clientIdAllowed(device: string, clientId: string): boolean {
  return clientId === device || clientId.startsWith(`${device}-`);
}

