import { isIPv4, isIPv6 } from 'node:net';
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet';
import type { InstanceView } from './records.js';
import type { ServiceLookup } from './service-lookup.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface DnsAnswerOptions {
  /** The zone served (default `outpost`): <service>.outpost, <service>.<unit>.outpost, _<service>._<proto>[.<unit>].outpost. */
  domain: string;
  /** TTL of every answer, seconds. */
  ttlSeconds: number;
}

/** SRV priority by nearness (lower is tried first): same node, same unit, other units. */
const PRIORITY: Record<InstanceView['nearness'], number> = { node: 10, unit: 20, remote: 30 };
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface Target {
  service: string;
  unit?: string;
  srvOnly: boolean;
}

/** `<hex>.addr.<domain>`: the SRV target name of an address (answered with A/AAAA by this server too). */
export function addressName(address: string, domain: string): string {
  if (isIPv4(address)) return `${address.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')}.addr.${domain}`;
  return `${expandIPv6(address)}.addr.${domain}`;
}

function expandIPv6(address: string): string {
  const [head = '', tail = ''] = address.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = groups(tail);
  const all = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return all.map((g) => g.padStart(4, '0')).join('');
}

function addressFromName(hex: string): string | undefined {
  if (/^[0-9a-f]{8}$/.test(hex)) return [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  if (/^[0-9a-f]{32}$/.test(hex)) return Array.from({ length: 8 }, (_, i) => hex.slice(i * 4, i * 4 + 4)).join(':');
  return undefined;
}

function parseTarget(labels: string[]): Target | undefined {
  // _<service>._<proto>[.<unit>]  (RFC 2782 style, SRV)
  if (labels[0]?.startsWith('_') && labels[1]?.startsWith('_')) {
    const service = labels[0].slice(1);
    if (!LABEL.test(service) || labels.length > 3 || (labels[2] !== undefined && !LABEL.test(labels[2]))) return undefined;
    return { service, srvOnly: true, ...(labels[2] !== undefined ? { unit: labels[2] } : {}) };
  }
  if (labels.length < 1 || labels.length > 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  return { service: labels[0]!, srvOnly: false, ...(labels[1] !== undefined ? { unit: labels[1] } : {}) };
}

/**
 * Answers one DNS query against the registry: A/AAAA with the instances' addresses and SRV with
 * their ports (targets `<hex>.addr.<domain>`, addresses in the additional section), nearest first.
 * NXDOMAIN for names with no healthy instance, REFUSED outside the zone, NOTIMP for other opcodes.
 */
export async function answerQuery(query: Packet & { opcode?: string }, lookup: ServiceLookup, options: DnsAnswerOptions): Promise<{ response: Packet; rcode: number }> {
  const reply = (rcode: number, answers: Answer[] = [], additionals: Answer[] = []) => ({
    rcode,
    response: {
      type: 'response' as const,
      id: query.id ?? 0,
      flags: (rcode === RCODE.REFUSED ? 0 : dnsPacket.AUTHORITATIVE_ANSWER) | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: query.questions ?? [],
      answers,
      additionals,
    },
  });
  if (query.opcode !== undefined && query.opcode !== 'QUERY') return reply(RCODE.NOTIMP);
  const question: Question | undefined = query.questions?.[0];
  if (!question || (query.questions?.length ?? 0) !== 1) return reply(RCODE.FORMERR);
  const name = question.name.toLowerCase().replace(/\.$/, '');
  const suffix = `.${options.domain}`;
  if (!name.endsWith(suffix)) return reply(RCODE.REFUSED);
  const labels = name.slice(0, -suffix.length).split('.');
  const ttl = options.ttlSeconds;

  if (labels.length === 2 && labels[1] === 'addr') {
    const address = addressFromName(labels[0] ?? '');
    if (!address) return reply(RCODE.NXDOMAIN);
    const v4 = isIPv4(address);
    if ((question.type === 'A' && v4) || (question.type === 'AAAA' && !v4)) return reply(RCODE.NOERROR, [{ name: question.name, type: question.type, ttl, data: address }]);
    return reply(RCODE.NOERROR);
  }

  const target = parseTarget(labels);
  if (!target) return reply(RCODE.NXDOMAIN);
  const instances = await lookup(target.service, target.unit !== undefined ? { unit: target.unit } : {});
  if (instances.length === 0) return reply(RCODE.NXDOMAIN);

  switch (question.type) {
    case 'A':
    case 'AAAA': {
      if (target.srvOnly) return reply(RCODE.NOERROR);
      const family = question.type === 'A' ? isIPv4 : isIPv6;
      const seen = new Set<string>();
      const answers: Answer[] = [];
      for (const i of instances) {
        if (!family(i.address) || seen.has(i.address)) continue;
        seen.add(i.address);
        answers.push({ name: question.name, type: question.type, ttl, data: i.address });
      }
      return reply(RCODE.NOERROR, answers);
    }
    case 'SRV': {
      const answers: Answer[] = [];
      const additionals: Answer[] = [];
      const targets = new Set<string>();
      for (const i of instances) {
        const host = addressName(i.address, options.domain);
        answers.push({ name: question.name, type: 'SRV', ttl, data: { priority: PRIORITY[i.nearness], weight: i.weight, port: i.port, target: host } });
        if (targets.has(host)) continue;
        targets.add(host);
        additionals.push({ name: host, type: isIPv4(i.address) ? 'A' : 'AAAA', ttl, data: i.address });
      }
      return reply(RCODE.NOERROR, answers, additionals);
    }
    default:
      return reply(RCODE.NOERROR);
  }
}

/** The UDP answer limit: 512 bytes, or the client's EDNS payload size (at most 4 096). */
export function udpLimit(query: Packet): number {
  const opt = query.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  return Math.max(512, Math.min(4096, opt?.udpPayloadSize ?? 512));
}

/** Encodes a response for UDP: answers are dropped from the end (farthest first) and TC is set until it fits. */
export function encodeForUdp(response: Packet, limit: number): Buffer {
  let packet = response;
  for (let i = 0; i < 1000; i++) {
    const buf = dnsPacket.encode(packet);
    if (buf.length <= limit) return buf;
    const answers = packet.answers ?? [];
    if (answers.length === 0) break;
    packet = { ...packet, flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: answers.slice(0, Math.max(0, Math.floor(answers.length / 2))), additionals: [] };
  }
  return dnsPacket.encode({ ...packet, answers: [], additionals: [], flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE });
}
