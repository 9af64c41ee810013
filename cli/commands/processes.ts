import { resolve } from 'node:path';
import type { RunningAgent } from '../../edge-agent/agent.js';
import type { HubOptions } from '../../cloud-hub/hub.js';
import { parseDuration } from '../../shared/duration.js';
import { OutpostError } from '../../shared/errors.js';
import { parseLabelPairs } from '../../shared/labels.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { parseLoginLimit } from '../../edge-agent/devices/login-limiter.js';
import { defaultHubDataDir } from '../config.js';
import { parseHubUrls } from '../../edge-agent/link/hub-urls.js';
import { registryOptions, type RegistryFlags } from './registry-flags.js';
import { peerOptions, type PeerFlags } from './peer-flags.js';

/** `HOST:PORT`, `:PORT` or `PORT`; `[::1]:PORT` for IPv6. */
export function parseListen(text: string, defaultHost: string): { host: string; port: number } {
  const t = text.trim();
  const m = /^\d+$/.test(t) ? [t, undefined, '', t] : /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(t);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new OutpostError('BAD_REQUEST', `--listen ${text}: expected HOST:PORT, e.g. 127.0.0.1:7400`);
  return { host: m[1] ?? (m[2] || defaultHost), port };
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new OutpostError('BAD_REQUEST', `${flag} ${text}: expected a positive whole number`);
  return n;
}

/** Stops on SIGINT/SIGTERM (a second signal forces the exit). */
function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err: unknown) => { log.error({ err }, 'shutdown failed'); process.exit(1); },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export interface HubFlags {
  listen: string; data?: string; logLevel: string; readDeadline: string; pingInterval: string; admissionRate: string; maxStreamsPerNode: string;
  store?: string; kubeconfig?: string; namespace?: string; replicaId?: string; nodeRenewInterval?: string;
}

export async function hubCommand(flags: HubFlags): Promise<void> {
  const log = createLogger({ name: 'hub', level: flags.logLevel });
  const { host, port } = parseListen(flags.listen, '127.0.0.1');
  // The hub and the agent load only their own code (issue 7: an agent does not carry the hub's).
  const { startHub } = await import('../../cloud-hub/hub.js');
  const hub = await startHub(
    {
      dataDir: resolve(flags.data ?? defaultHubDataDir()), host, port, readDeadlineMs: parseDuration(flags.readDeadline, '--read-deadline'), pingIntervalMs: parseDuration(flags.pingInterval, '--ping-interval'), admissionRate: positiveInt(flags.admissionRate, '--admission-rate'), maxStreamsPerNode: positiveInt(flags.maxStreamsPerNode, '--max-streams-per-node'),
      ...hubStoreOptions(flags),
    },
    log,
  );
  onShutdown(log, () => hub.stop());
}

/** `--store sqlite|kubernetes` and the flags that only Kubernetes mode takes. */
export function hubStoreOptions(flags: Pick<HubFlags, 'store' | 'kubeconfig' | 'namespace' | 'replicaId' | 'nodeRenewInterval'>): Pick<HubOptions, 'store' | 'replicaId' | 'nodeRenewIntervalMs'> {
  const type = flags.store ?? 'sqlite';
  if (type === 'sqlite') {
    const stray = (['kubeconfig', 'namespace', 'replicaId'] as const).filter((k) => flags[k] !== undefined);
    if (stray.length > 0) throw new OutpostError('BAD_REQUEST', `${stray.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} only with --store kubernetes`);
    return {};
  }
  if (type !== 'kubernetes') throw new OutpostError('BAD_REQUEST', `--store ${type}: expected sqlite or kubernetes`);
  if (flags.namespace !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(flags.namespace)) {
    throw new OutpostError('BAD_REQUEST', `--namespace ${flags.namespace}: not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)`);
  }
  if (flags.replicaId !== undefined && !/^[\x21-\x7e]{1,128}$/.test(flags.replicaId)) throw new OutpostError('BAD_REQUEST', `--replica-id: 1 to 128 printable characters without spaces`);
  const renew = parseDuration(flags.nodeRenewInterval ?? '40s', '--node-renew-interval');
  if (renew < 1000) throw new OutpostError('BAD_REQUEST', `--node-renew-interval ${flags.nodeRenewInterval}: at least 1s`);
  return {
    store: { type: 'kubernetes', ...(flags.kubeconfig ? { kubeconfig: resolve(flags.kubeconfig) } : {}), ...(flags.namespace ? { namespace: flags.namespace } : {}) },
    ...(flags.replicaId ? { replicaId: flags.replicaId } : {}),
    nodeRenewIntervalMs: renew,
  };
}

export interface AgentFlags extends RegistryFlags, PeerFlags {
  hub: string; name: string; token?: string; data: string; labels?: string; listen: string; logLevel: string;
  readDeadline: string; backoffMax: string; stopInstancesOnExit?: boolean; containerSocket?: string;
  mqttListen: string; mqttWsListen?: string; mqttAnonymous?: boolean; mqttUrl?: string; telemetryBudget: string; telemetryMaxAge: string;
  mqttTlsListen?: string; mqttTlsCert?: string; mqttTlsKey?: string; mqttTlsCa?: string; mqttLoginLimit?: string; mqttLoginLimitAddress?: string;
  tunnelAllow?: string;
}

/** The embedded broker's TLS listener and failed-login limits from the flags (README "Devices (MQTT)"). */
function mqttSecurity(flags: AgentFlags) {
  const { mqttTlsListen: listen, mqttTlsCert: certFile, mqttTlsKey: keyFile, mqttTlsCa: caFile } = flags;
  if (!listen && (certFile || keyFile || caFile)) throw new OutpostError('BAD_REQUEST', '--mqtt-tls-cert, --mqtt-tls-key and --mqtt-tls-ca need --mqtt-tls-listen host:port');
  if (listen && (!certFile || !keyFile)) throw new OutpostError('BAD_REQUEST', '--mqtt-tls-listen needs --mqtt-tls-cert FILE and --mqtt-tls-key FILE');
  const limit = (text: string | undefined, flag: string) => {
    try {
      return parseLoginLimit(text ?? '', flag);
    } catch (err) {
      throw new OutpostError('BAD_REQUEST', (err as Error).message);
    }
  };
  return {
    ...(listen && certFile && keyFile ? { tls: { listen: parseListen(listen, '127.0.0.1'), certFile: resolve(certFile), keyFile: resolve(keyFile), ...(caFile ? { caFile: resolve(caFile) } : {}) } } : {}),
    loginLimit: { perUsername: limit(flags.mqttLoginLimit ?? '10/1m', '--mqtt-login-limit'), perAddress: limit(flags.mqttLoginLimitAddress ?? '30/1m', '--mqtt-login-limit-address') },
  };
}

/** `--tunnel-allow host:port,...`: each entry must be host:port. */
function tunnelAllowList(text: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const a of list) if (!/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(a)) throw new OutpostError('BAD_REQUEST', `--tunnel-allow: "${a}" is not host:port`);
  return list;
}

function mqttUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new OutpostError('BAD_REQUEST', `--mqtt-url: "${text}" is not a URL (example: mqtt://user:password@broker.local:1883)`);
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:'].includes(url.protocol)) throw new OutpostError('BAD_REQUEST', `--mqtt-url: scheme "${url.protocol}" is not mqtt:, mqtts:, ws: or wss:`);
  return text;
}

export async function agentCommand(flags: AgentFlags): Promise<void> {
  const log = createLogger({ name: 'agent', level: flags.logLevel });
  parseHubUrls(flags.hub); // a bad --hub is refused before anything starts
  const { host, port } = parseListen(flags.listen, '127.0.0.1');
  const controller = new AbortController();
  onShutdown(log, async () => {
    controller.abort();
    await agent?.stop();
  });
  let agent: RunningAgent | undefined;
  const { startAgent } = await import('../../edge-agent/agent.js');
  agent = await startAgent(
    {
      hubUrl: flags.hub, name: flags.name, dataDir: resolve(flags.data), labels: flags.labels ? parseLabelPairs(flags.labels) : {},
      localApiHost: host, localApiPort: port, readDeadlineMs: parseDuration(flags.readDeadline, '--read-deadline'),
      backoffMaxMs: parseDuration(flags.backoffMax, '--backoff-max'), stopInstancesOnExit: flags.stopInstancesOnExit ?? false,
      ...(flags.token ? { token: flags.token } : {}),
      ...(flags.containerSocket !== undefined ? { containerSocket: flags.containerSocket } : {}),
      ...(flags.tunnelAllow ? { tunnelAllow: tunnelAllowList(flags.tunnelAllow) } : {}),
      ...(flags.mqttListen !== 'none' || flags.mqttUrl
        ? { mqtt: { listen: parseListen(flags.mqttListen === 'none' ? '127.0.0.1:1883' : flags.mqttListen, '127.0.0.1'), ...(flags.mqttWsListen ? { wsListen: parseListen(flags.mqttWsListen, '127.0.0.1') } : {}), allowAnonymous: flags.mqttAnonymous ?? false, ...mqttSecurity(flags), ...(flags.mqttUrl ? { url: mqttUrl(flags.mqttUrl) } : {}) } }
        : {}),
      telemetryBudget: { maxRows: positiveInt(flags.telemetryBudget, '--telemetry-budget'), maxAgeMs: parseDuration(flags.telemetryMaxAge, '--telemetry-max-age') },
      registry: registryOptions(flags),
      peers: peerOptions(flags),
    },
    log,
    controller.signal,
  );
}
