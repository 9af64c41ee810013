import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createRegistry } from '../shared/metrics.js';
import type { Logger } from '../shared/logger.js';
import { startAll, stopAll, type Component } from '../shared/lifecycle.js';
import { lockDataDir } from './data-dir-lock.js';
import { loadOrCreateAdminToken } from './auth/admin-token.js';
import { HubSecrets } from './auth/hub-secrets.js';
import type { HubSecretStore } from './auth/secret-store.js';
import { defaultReplicaId, openReplicaMode, type KubernetesStoreOptions, type ReplicaMode } from './kube/replica-mode.js';
import { credentialJanitor, telemetryJanitor } from './kube/replica-janitors.js';
import { ObjectCache } from './cache/object-cache.js';
import { EventLog } from './events/event-log.js';
import { NodeHealth } from './health/node-health.js';
import { createHubMetrics } from './metrics.js';
import { createApiServer } from './api/server.js';
import { Scheduler } from './scheduler/scheduler.js';
import { configsHash } from './configs/config-hash.js';
import type { EdgeConfig } from '../shared/api/index.js';
import { UnitController } from './units/unit-controller.js';
import { ReportHandler } from './sessions/report-handler.js';
import { SessionManager } from './sessions/session-manager.js';
import { AuditLog } from './tunnel/audit-log.js';
import { TunnelApi } from './tunnel/tunnel-api.js';
import { createTunnelMetrics } from './tunnel/tunnel-metrics.js';
import { SqliteStore } from './store/sqlite-store.js';
import { TelemetryStore } from './devices/telemetry-store.js';
import { DeviceReports } from './devices/device-reports.js';
import { DeviceController } from './devices/device-controller.js';
import { createDeviceMetrics } from './devices/device-metrics.js';
import { GlobalRegistryView } from './registry/global-view.js';
import { RegistryReports } from './registry/registry-reports.js';
import { createRegistryMetrics } from './registry/registry-metrics.js';
import { ViewJanitor } from './registry/view-janitor.js';
import { TwinConvergence } from './devices/twin-convergence.js';
import { PeerVotes } from './peers/peer-votes.js';
import { UnitPeersController } from './peers/unit-peers-controller.js';

/** Everything a hub needs to know; main.ts fills it from flags and environment. */
export interface HubOptions {
  dataDir: string;
  host: string;
  /** 0 lets the OS choose. */
  port: number;
  /** Agent ping period, ms. Default 10 000. */
  pingIntervalMs?: number;
  /** A session with no frame or pong for this long is closed, ms. Default 30 000. */
  readDeadlineMs?: number;
  /** After a hub start, nodes that do not reconnect within this window become Disconnected, ms. */
  startupGraceMs?: number;
  /** Agent sessions admitted per second (a reconnect storm becomes a queue). Default 500. */
  admissionRate?: number;
  /** Tunnel streams open at once per node (logs, exec, port-forward). Default 32. */
  maxStreamsPerNode?: number;
  /** Where desired state lives: SQLite in the data dir (default), or CRDs on a Kubernetes API server (several replicas). */
  store?: { type: 'sqlite' } | KubernetesStoreOptions;
  /** Kubernetes mode: this replica's identity in the leader Lease. Default hostname-pid. */
  replicaId?: string;
  /** Kubernetes mode: how often the replica holding a node's session renews its `status.lastSeen`, ms. Default 40 000; the leader marks a node Disconnected after 2.5 times this without a renew. */
  nodeRenewIntervalMs?: number;
}

/** Where a running hub can be found, written to `<data>/hub.json` for the CLI. */
export interface HubInfo {
  url: string;
  pid: number;
  adminTokenFile: string;
}

export interface RunningHub {
  url: string;
  adminToken: string;
  adminTokenFile: string;
  stop(): Promise<void>;
}

/** Builds and starts a hub. The composition root for the hub process (called by `outpost hub`). */
export async function startHub(options: HubOptions, log: Logger): Promise<RunningHub> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(join(options.dataDir, 'hub.lock'));
  try {
    return await buildHub(options, log, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function buildHub(options: HubOptions, log: Logger, lock: { release(): void }): Promise<RunningHub> {
  const adminTokenFile = join(options.dataDir, 'admin-token');
  // Kubernetes mode: desired state, credentials and the admin token are shared by the replicas;
  // the data dir keeps what is per replica (telemetry, events, audit, registry view).
  const replica: ReplicaMode | undefined = options.store?.type === 'kubernetes'
    ? await openReplicaMode({ ...options.store, replicaId: options.replicaId ?? defaultReplicaId(), adminTokenFile }, log)
    : undefined;
  const adminToken = replica?.adminToken ?? loadOrCreateAdminToken(adminTokenFile);
  const registry = createRegistry('outpost_hub');
  const metrics = createHubMetrics(registry);
  const store = replica?.store ?? SqliteStore.open({ path: join(options.dataDir, 'store.db') });
  const secrets: HubSecretStore = replica?.secrets ?? new HubSecrets(join(options.dataDir, 'hub.db'));
  const events = new EventLog(join(options.dataDir, 'hub.db'));
  const cache = new ObjectCache({ store, log: log.child({ component: 'cache' }) });
  await cache.start();
  const telemetry = new TelemetryStore(join(options.dataDir, 'telemetry.db'));
  const deviceMetrics = createDeviceMetrics(registry, () => cache.list('Device').filter((d) => (d.status as { online?: boolean } | undefined)?.online === true).length);
  const convergence = new TwinConvergence(deviceMetrics.twinConvergence);
  const devices = new DeviceReports({ store, cache, telemetry, metrics: deviceMetrics, log: log.child({ component: 'devices' }), convergence });

  const registryView = new GlobalRegistryView({ path: join(options.dataDir, 'registry.db') });
  const registryMetrics = createRegistryMetrics(registry, () => registryView.size());
  const registryLog = log.child({ component: 'registry' });
  const registryReports = new RegistryReports({ view: registryView, cache, metrics: registryMetrics, log: registryLog });
  const registryJanitor = new ViewJanitor({ view: registryView, cache, metrics: registryMetrics, log: registryLog });

  let sessions: SessionManager | undefined;
  const peerVotes = new PeerVotes(Date.now);
  const renewMs = options.nodeRenewIntervalMs ?? 40_000;
  const health = new NodeHealth(
    { store, cache, log: log.child({ component: 'health' }), metrics, now: Date.now, isConnected: (n) => sessions?.isConnected(n) ?? false, peerVotes, ...(replica ? { isLeader: replica.isLeader } : {}) },
    {
      ...(options.startupGraceMs === undefined ? {} : { startupGraceMs: options.startupGraceMs }),
      ...(replica ? { lastSeenIntervalMs: renewMs, replicated: { staleAfterMs: Math.round(renewMs * 2.5) } } : {}),
    },
  );
  const reports = new ReportHandler({ store, cache, events, health, log: log.child({ component: 'reports' }), metrics, devices, registry: registryReports, peerVotes });
  sessions = new SessionManager(
    {
      cache, secrets, log: log.child({ component: 'sessions' }), metrics,
      hooks: {
        onHello: (scope, hello) => health.connected(scope.node, hello),
        onAck: (scope, rev) => health.acked(scope.node, rev),
        onReport: (scope, items, session) => reports.handle(scope, items, session),
        onDisconnect: (node) => health.disconnected(node),
      },
    },
    {
      pingIntervalMs: options.pingIntervalMs ?? 10_000, readDeadlineMs: options.readDeadlineMs ?? 30_000, highWaterBytes: 8 * 1024 * 1024,
      ...(options.maxStreamsPerNode === undefined ? {} : { maxStreams: options.maxStreamsPerNode }),
      admission: { ratePerSecond: options.admissionRate ?? 500, burst: Math.min(200, options.admissionRate ?? 500) },
    },
  );
  // The leader-only components, built fresh for each leadership term (Kubernetes mode) or once.
  const leaderComponents = (): Component[] => {
    const scheduler = new Scheduler({
      store, cache, log: log.child({ component: 'scheduler' }), metrics,
      configsHash: (t) => configsHash(t, (n) => cache.get('EdgeConfig', n) as EdgeConfig | undefined),
    });
    const units = new UnitController({ store, cache, log: log.child({ component: 'units' }) });
    const unitPeers = new UnitPeersController({ store, cache, log: log.child({ component: 'unit-peers' }) });
    const deviceController = new DeviceController({ store, cache, telemetry, log: log.child({ component: 'devices' }), convergence });
    return [
      { name: 'units', start: async () => units.start(), stop: () => units.stop() },
      { name: 'unit-peers', start: async () => unitPeers.start(), stop: () => unitPeers.stop() },
      { name: 'devices', start: async () => deviceController.start(), stop: () => deviceController.stop() },
      { name: 'scheduler', start: async () => scheduler.start(), stop: () => scheduler.stop() },
    ];
  };
  const audit = new AuditLog(join(options.dataDir, 'hub.db'));
  const tunnel = new TunnelApi({ cache, sessions, audit, adminToken, log: log.child({ component: 'tunnel' }), metrics: createTunnelMetrics(registry) });
  // API reads come from the cache only where it is current with every acknowledged write
  // (SQLite: its events follow the commit). The Kubernetes watch lags writes, and a client that
  // applies and then gets must read its own write: there reads go to the API server.
  const server = createApiServer({
    store, ...(replica ? {} : { cache }), secrets, sessions, events, registry, metrics, log, adminToken, devices: { store, telemetry }, tunnel,
    registryView: { view: registryView, cache, secrets, metrics: registryMetrics },
    onNodeDeleted: (name) => {
      void Promise.resolve().then(() => secrets.revokeNode(name)).catch((err: unknown) => log.error({ err, node: name }, 'revoking the node credential failed'));
      sessions?.disconnect(name, 'node deleted');
    },
  });

  const registryC: Component = { name: 'registry', start: async () => registryJanitor.start(), stop: async () => registryJanitor.stop() };
  // SQLite: one hub, always the leader, components in the order they always had. Kubernetes: the
  // leader-only ones run under the election (last below).
  const [unitsC, unitPeersC, devicesC, schedulerC] = replica ? [] : leaderComponents();
  const components: Component[] = [
    { name: 'cache', start: async () => {}, stop: () => cache.stop() },
    { name: 'health', start: async () => health.start(), stop: () => health.stop() },
    { name: 'sessions', start: async () => sessions.start(), stop: () => sessions.stop() },
    ...(replica ? [registryC, telemetryJanitor({ cache, telemetry, log: log.child({ component: 'devices' }) })] : [unitsC, unitPeersC, devicesC, registryC, schedulerC] as Component[]),
    {
      name: 'http',
      start: () => new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // Backlog 4096 (capped by net.core.somaxconn), not Node's 511: a fleet dialling at once
        // queues instead of having SYNs dropped and retried after 1, 3, 7 s (issue 7).
        server.listen({ port: options.port, host: options.host, backlog: 4096 }, () => resolve());
      }),
      // Stop accepting and drop idle HTTP connections; agent WebSockets are closed by the
      // sessions component right after, so do not wait for them here.
      stop: async () => {
        server.close();
        server.closeAllConnections();
        tunnel.stop();
      },
    },
    // Campaigns once the replica serves; on stop it ends leader-only work and releases the Lease first.
    ...(replica ? [replica.election(() => [...leaderComponents(), credentialJanitor({ cache, secrets, log: log.child({ component: 'secrets' }) })])] : []),
  ];
  const onStopError = (name: string, err: unknown) => log.error({ err, component: name }, 'stop failed');
  const closeFiles = async () => {
    await store.close();
    await secrets.close();
    events.close();
    audit.close();
    telemetry.close();
    registryView.close();
  };
  try {
    await startAll(components, 10_000, onStopError);
  } catch (err) {
    await closeFiles();
    throw err;
  }

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const infoFile = join(options.dataDir, 'hub.json');
  const info: HubInfo = { url, pid: process.pid, adminTokenFile };
  writeFileSync(infoFile, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  log.info({ url, dataDir: options.dataDir }, 'hub listening');

  return {
    url,
    adminToken,
    adminTokenFile,
    async stop() {
      log.info('hub stopping');
      await stopAll(components, 10_000, onStopError);
      rmSync(infoFile, { force: true });
      await closeFiles();
      lock.release();
    },
  };
}
