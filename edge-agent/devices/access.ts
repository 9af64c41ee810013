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

/**
 * The device a client id belongs to: of the devices (`isDevice`) whose names it may use, the one
 * with the longest name. Device `cam` may not use `cam-2` or `cam-2-a` when `cam-2` is a device
 * too: the broker would hand it that device's session and disconnect that device.
 */
export function clientIdOwner(clientId: string, isDevice: (name: string) => boolean): string | undefined {
  if (isDevice(clientId)) return clientId;
  for (let end = clientId.lastIndexOf('-'); end > 0; end = clientId.lastIndexOf('-', end - 1)) {
    const name = clientId.slice(0, end);
    if (isDevice(name)) return name;
  }
  return undefined;
}

