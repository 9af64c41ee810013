import { isIP } from 'node:net';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError } from '../../shared/errors.js';
import type { AgentOptions } from '../../edge-agent/agent.js';
import { parseListen } from './processes.js';

/** The agent's local service registry flags (README "Local service registry"). */
export interface RegistryFlags {
  dnsListen: string;
  dnsTtl: string;
  advertiseAddress: string;
  registryTtlGrace: string;
  registryTombstoneRetention: string;
}

export function registryOptions(flags: RegistryFlags): NonNullable<AgentOptions['registry']> {
  if (isIP(flags.advertiseAddress) === 0) throw new OutpostError('BAD_REQUEST', `--advertise-address: "${flags.advertiseAddress}" is not an IPv4 or IPv6 address`);
  const ttlMs = parseDuration(flags.dnsTtl, '--dns-ttl');
  if (ttlMs < 0 || ttlMs > 86_400_000) throw new OutpostError('BAD_REQUEST', `--dns-ttl ${flags.dnsTtl}: expected 0s..24h`);
  const grace = Number(flags.registryTtlGrace);
  if (!Number.isInteger(grace) || grace < 0 || grace > 100) throw new OutpostError('BAD_REQUEST', `--registry-ttl-grace ${flags.registryTtlGrace}: expected a whole number of ttls, 0..100`);
  const retention = parseDuration(flags.registryTombstoneRetention, '--registry-tombstone-retention');
  if (retention < 1_000) throw new OutpostError('BAD_REQUEST', `--registry-tombstone-retention ${flags.registryTombstoneRetention}: expected at least 1s`);
  return {
    advertiseAddress: flags.advertiseAddress,
    ttlGraceTtls: grace,
    tombstoneRetentionMs: retention,
    ...(flags.dnsListen === 'none' ? {} : { dns: { ...dnsListen(flags.dnsListen), ttlSeconds: Math.round(ttlMs / 1000) } }),
  };
}

function dnsListen(text: string): { host: string; port: number } {
  try {
    return parseListen(text, '127.0.0.1');
  } catch {
    throw new OutpostError('BAD_REQUEST', `--dns-listen ${text}: expected HOST:PORT (e.g. 127.0.0.1:8600, port 0 = any free port) or none`);
  }
}
