import type { IConnectPacket, IPublishPacket, ISubscribePacket, IUnsubscribePacket, Packet } from 'mqtt-packet';

// Stateless halves of the MQTT 5 adapter: a v5 client packet as the 3.1.1 packet aedes reads, and
// the reason codes v5 has where 3.1.1 has a return code or nothing. What a v5 packet carries that
// 3.1.1 cannot (properties, subscription options) is dropped here; README "MQTT 5 clients" lists it.

/** MQTT 5 reason codes the adapter sends (MQTT 5.0 section 2.4). */
export const Reason = {
  success: 0x00,
  noSubscriptionExisted: 0x11,
  unspecified: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  unsupportedProtocolVersion: 0x84,
  clientIdNotValid: 0x85,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  badAuthenticationMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  sharedSubscriptionsNotSupported: 0x9e,
  connectionRateExceeded: 0x9f,
  wildcardSubscriptionsNotSupported: 0xa2,
} as const;

/** CONNACK: MQTT 3.1.1 return code (index) -> MQTT 5 reason code. */
const CONNACK_REASON = [Reason.success, Reason.unsupportedProtocolVersion, Reason.clientIdNotValid, Reason.serverUnavailable, Reason.badUserNameOrPassword, Reason.notAuthorized];

export function connackReason(returnCode: number | undefined): number {
  return CONNACK_REASON[returnCode ?? 0] ?? Reason.unspecified;
}

/**
 * A v5 CONNECT as 3.1.1. Clean session = the session ends with the connection (session expiry 0,
 * the v5 default); a session with an expiry is kept (aedes keeps it until the agent restarts) and
 * resumed. Will properties (delay, expiry, content type, ...) are dropped.
 */
export function connectToV4(p: IConnectPacket): IConnectPacket {
  const v4: IConnectPacket = {
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: p.clientId,
    clean: (p.properties?.sessionExpiryInterval ?? 0) === 0, keepalive: p.keepalive ?? 0,
  };
  if (p.username !== undefined) v4.username = p.username;
  if (p.password !== undefined) v4.password = p.password;
  if (p.will) v4.will = { topic: p.will.topic, payload: p.will.payload, qos: p.will.qos ?? 0, retain: p.will.retain ?? false };
  return v4;
}

/** A v5 PUBLISH (topic alias already resolved into `topic`) as 3.1.1: properties dropped. */
export function publishToV4(p: IPublishPacket, topic: string): IPublishPacket {
  const v4: IPublishPacket = { cmd: 'publish', topic, payload: p.payload, qos: p.qos, dup: p.dup, retain: p.retain };
  if (p.messageId !== undefined) v4.messageId = p.messageId;
  return v4;
}

/** SUBSCRIBE as 3.1.1: no-local, retain-as-published, retain handling and the subscription identifier are dropped. */
export function subscribeToV4(p: ISubscribePacket): ISubscribePacket {
  return { cmd: 'subscribe', messageId: p.messageId!, subscriptions: p.subscriptions.map((s) => ({ topic: s.topic, qos: s.qos })) };
}

export function unsubscribeToV4(p: IUnsubscribePacket): IUnsubscribePacket {
  return { cmd: 'unsubscribe', messageId: p.messageId!, unsubscriptions: p.unsubscriptions };
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP from the client as 3.1.1 (its reason code and properties dropped). */
export function ackToV4(p: Packet & { cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp' }): Packet {
  return { cmd: p.cmd, messageId: p.messageId! } as Packet;
}

/** The SUBACK reason a v5 client gets for a filter the broker refused (3.1.1 says only 0x80). */
export function subscribeRefusal(filter: string): number {
  if (filter.startsWith('$share/')) return Reason.sharedSubscriptionsNotSupported;
  if (filter.includes('#') || filter.includes('+')) return Reason.wildcardSubscriptionsNotSupported;
  return Reason.notAuthorized;
}
