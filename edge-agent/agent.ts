import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { InstanceStatus } from '../shared/api/index.js';
import { Backoff } from '../shared/backoff.js';
import { sleep, systemClock } from '../shared/clock.js';
import { isOutpostError, OutpostError } from '../shared/errors.js';
import { startAll, stopAll, type Component } from '../shared/lifecycle.js';
import type { Logger } from '../shared/logger.js';
import { createRegistry } from '../shared/metrics.js';
import { openAgentDatabase } from './cache/database.js';
import { CacheHealth } from './cache/cache-health.js';
import { DesiredCache } from './cache/desired-cache.js';
import { nodeConfigResolver, nodeSecretCodec } from './configs/node-configs.js';
import { NodeReporter } from './node-reporter.js';
import { Outbox } from './cache/outbox.js';
import { HubLink, type LinkState } from './link/hub-link.js';
import { AgentTunnel } from './tunnel/agent-tunnel.js';
import { createExecHandler } from './tunnel/exec-handler.js';
import { createExecMetrics } from './tunnel/exec-metrics.js';
import { ExecGroupStore, ExecLeftovers } from './tunnel/exec-groups.js';
import { registerStreamHandlers } from './tunnel/register-streams.js';
import { joinHub, readCredential, writeCredential, type NodeCredential } from './link/join.js';
import { createLocalApi } from './local-api/server.js';
import { LocalRegistry, type LocalRegistryOptions } from './registry/local-registry.js';
import { peersSynced, type PeerState } from './registry/peer-sync-gate.js';
import { AgentPeers, type AgentPeersOptions } from './registry/peers/agent-peers.js';
import { httpHubRegistryApi } from './registry/hub-registry-api.js';
import { HubLookup } from './registry/hub-lookup.js';
import { HubReporter } from './registry/hub-reporter.js';
import { createHubViewMetrics } from './registry/hub-view-metrics.js';
import { createAgentMetrics } from './metrics.js';
import { chooseEngineSocket } from './runtime/container/engine-socket.js';
import { ProcessRuntime } from './runtime/process-runtime.js';
import { hasProcFs } from './runtime/proc-stat.js';
import { WorkloadRuntime } from './runtime/workload-runtime.js';
import { DeviceBroker, type DeviceBrokerOptions } from './devices/device-broker.js';
import { createDeviceMetrics } from './devices/device-metrics.js';

export interface AgentOptions {
  hubUrl: string;
  name: string;
  /** Needed only for the first start; later starts use the stored node credential. */
  token?: string;
  dataDir: string;
  labels: Record<string, string>;
  /** host:port of the local API (/healthz, /status, /metrics); port 0 = any. */
  localApiHost: string;
  localApiPort: number;
  readDeadlineMs?: number;
  /** Upper bound of the reconnect backoff, ms. Default 30 000. */
  backoffMaxMs?: number;
  /** How often the node status is checked and, when changed, reported, ms. Default 5 000. */
  nodeStatusIntervalMs?: number;
  /** Stop instances when the agent stops (playground); by default they outlive the agent. */
  stopInstancesOnExit?: boolean;
  /** Docker/Podman engine socket (--container-socket): a path, `none`, or unset to probe the defaults. */
  containerSocket?: string;
  /** The embedded MQTT broker for devices (README "Devices (MQTT)"); unset = no broker. */
  mqtt?: DeviceBrokerOptions & { /** Use this external broker instead of the embedded one. */ url?: string };
  /** Outbox budget for device telemetry while the hub is unreachable (oldest dropped first, counted). */
  telemetryBudget?: { maxRows?: number; maxAgeMs?: number; maxBytes?: number };
  /** host:port addresses tunnel streams may reach besides this node's instances (`--tunnel-allow`). */
  tunnelAllow?: string[];
  /** The local service registry (README "Local service registry"): advertised address, DNS listener, leases. */
  registry?: Omit<LocalRegistryOptions, 'node' | 'unit' | 'dataDir'>;
  /** Registry replication inside the unit (README "Replication and failure detection"); unset = no peer listener. */
  peers?: AgentPeersOptions;
}

export interface RunningAgent {
  node: string;
  unit: string;
  localApiUrl: string;
  stop(): Promise<void>;
}

/** Joins once if needed, then with or without the hub: cache -> runtime, outbox -> hub. */
export async function startAgent(options: AgentOptions, log: Logger, signal?: AbortSignal): Promise<RunningAgent> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const cred = await ensureCredential(options, log, signal);
  const nodeLog = log.child({ node: cred.node, unit: cred.unit });
  const opened = openAgentDatabase(join(options.dataDir, 'cache.db'), nodeLog);
  const db = opened.db;
  const cacheHealth = new CacheHealth(opened.quarantined);
  // Runtime records (pids of running instances) live in their own file: if the cache file is
  // ever unreadable and moved aside, the agent still knows, and re-adopts, what it runs.
  const runtimeDb = openAgentDatabase(join(options.dataDir, 'runtime.db'), nodeLog).db;
  // EdgeConfig secrets are sealed with the node's key before they reach the SQLite file.
  const cache = new DesiredCache(db, nodeSecretCodec(options.dataDir));
  const tb = options.telemetryBudget ?? {};
  const outbox = new Outbox(db, { ...(tb.maxRows !== undefined ? { maxTelemetry: tb.maxRows } : {}), ...(tb.maxAgeMs !== undefined ? { maxTelemetryAgeMs: tb.maxAgeMs } : {}), ...(tb.maxBytes !== undefined ? { maxTelemetryBytes: tb.maxBytes } : {}) });
  const registry = createRegistry('outpost_agent', { node: cred.node });
  const metrics = createAgentMetrics(registry);
  const processRuntime = new ProcessRuntime(
    { db: runtimeDb, log: nodeLog },
    { logDir: join(options.dataDir, 'logs'), workDir: join(options.dataDir, 'work'), baseEnv: { OUTPOST_NODE: cred.node, OUTPOST_UNIT: cred.unit } },
  );
  const configResolver = nodeConfigResolver({ cache, log: nodeLog }, { node: cred.node, unit: cred.unit, dataDir: options.dataDir });
  const engineSocket = chooseEngineSocket(options.containerSocket);
  // Loaded only on a node with a container engine, as the MQTT client below only with --mqtt-url:
  // code an agent does not use stays out of its memory (issue 7, agent footprint).
  const containerRuntime = engineSocket.socket === null ? undefined : new (await import('./runtime/container/container-runtime.js')).ContainerRuntime(
    { engine: new (await import('./runtime/container/docker-engine.js')).DockerEngine(engineSocket.socket), db: runtimeDb, log: nodeLog },
    { node: cred.node, logDir: join(options.dataDir, 'logs'), baseEnv: { OUTPOST_NODE: cred.node, OUTPOST_UNIT: cred.unit } },
  );
  if (engineSocket.socket === null) nodeLog.info({ reason: engineSocket.reason }, 'no container runtime');
  const runtime = new WorkloadRuntime(processRuntime, containerRuntime, configResolver, engineSocket.socket === null ? engineSocket.reason : undefined);

  // An empty or quarantined cache says nothing about what should run: reconciling against it would
  // stop every running instance. Until the hub has sent a full desired set, the runtime only
  // supervises (and re-adopts) what it finds.
  let desiredKnown = false;
  const serviceRegistry = new LocalRegistry(
    {
      log: nodeLog, metrics: registry, statuses: () => runtime.statuses(),
      desired: () => (desiredKnown ? cache.instances().map((i) => ({ name: i.metadata.name, ...(i.spec.template.service ? { service: i.spec.template.service } : {}) })) : undefined),
    },
    { ...options.registry, node: cred.node, unit: cred.unit, dataDir: options.dataDir },
  );
  const registryPeers = new AgentPeers({ registry: serviceRegistry.state, cache, outbox, log: nodeLog.child({ component: 'registry-peers' }), metrics: registry }, options.peers ?? {});
  const reconcile = () => {
    if (!desiredKnown) {
      desiredKnown = cacheHealth.current.status === 'True' && (cache.appliedRevision() > 0 || (runtime.hasAdopted() && runtime.statuses().size === 0));
      if (!desiredKnown) {
        nodeLog.warn('cache holds no trustworthy desired state yet; keeping running instances as they are until the hub sends it');
        return;
      }
    }
    runtime.reconcile(cache.instances().map((i) => ({ name: i.metadata.name, template: i.spec.template, templateHash: i.spec.templateHash, unit: i.spec.unit })));
    configResolver.prune(runtime.configDirsInUse());
    serviceRegistry.desiredChanged();
  };
  runtime.onKept = (instance, reason) => nodeLog.warn({ instance, reason }, 'a config of this running instance is gone; it keeps running with the files it has');
  runtime.onStatus((name, status) => serviceRegistry.statusChanged(name, status));
  // The hub's global view (README "Global view", "Other units"): the unit's records go up through
  // the outbox; lookups add other units' instances from the hub, the last answer cached in cache.db.
  const hubRegistryApi = httpHubRegistryApi({ hubUrl: cred.hub, credential: cred.credential });
  const hubViewMetrics = createHubViewMetrics(registry);
  const hubReporter = new HubReporter({ registry: serviceRegistry.state, outbox, hub: hubRegistryApi, log: nodeLog.child({ component: 'registry-hub' }), metrics: hubViewMetrics });
  let linkUp = false;
  serviceRegistry.setLookup(new HubLookup({ registry: serviceRegistry.state, hub: hubRegistryApi, db, linkUp: () => linkUp, log: nodeLog.child({ component: 'registry-hub' }), metrics: hubViewMetrics }).lookup);
  runtime.onStatus((name: string, status: InstanceStatus) => {
    if (!cache.has('Instance', name)) return; // removed: the hub deleted it already
    const message = status.message === undefined ? {} : { message: status.message.slice(0, 4000) };
    outbox.put('instance-status', { name, status: { ...status, ...message, node: cred.node } }, `instance/${name}`);
  });
  runtime.onEvent((e) => {
    if (e.reason === 'Started' && (runtime.statuses().get(e.instance)?.restarts ?? 0) > 0) metrics.instanceRestarts.inc();
    const key = e.process ? `${e.process.edge}:${e.process.pid}@${e.process.startedAt}`.slice(0, 64) : undefined;
    outbox.put(
      'event',
      { type: e.type, reason: e.reason.slice(0, 128), message: e.message.slice(0, 4000), object: { kind: 'Instance', name: e.instance }, time: new Date().toISOString(), ...(key ? { key } : {}) },
      key ? `event/${e.instance}/${key}` : undefined,
    );
  });

  const deviceDeps = { cache, outbox, metrics: createDeviceMetrics(registry, outbox), log: nodeLog.child({ component: 'devices' }), node: cred.node, unit: cred.unit };
  const devices = !options.mqtt ? undefined : options.mqtt.url ? new (await import('./devices/external-broker.js')).ExternalBroker(deviceDeps, { url: options.mqtt.url }) : new DeviceBroker(deviceDeps, options.mqtt);
  let devicesError: string | undefined;

  // Tunnel streams from the hub (issue 8): each kind registers its handler here.
  const tunnel = new AgentTunnel({ log: nodeLog.child({ component: 'tunnel' }) });
  const execGroups = new ExecGroupStore(runtimeDb);
  tunnel.handle('exec', createExecHandler({
    targets: { statuses: () => runtime.statuses(), processContext: (name) => processRuntime.execContext(name), container: (name) => containerRuntime?.execTarget(name) },
    log: nodeLog, node: cred.node, metrics: createExecMetrics(registry), groups: execGroups,
  }));
  registerStreamHandlers(tunnel, { instances: () => cache.instances(), statuses: () => runtime.statuses(), onEvent: (l) => runtime.onEvent(l) }, { logDir: join(options.dataDir, 'logs'), allow: options.tunnelAllow ?? [] });

  const link = new HubLink(
    {
      cache, outbox, log: nodeLog.child({ component: 'link' }), tunnel, peerEndpoint: () => registryPeers.endpoint(),
      onDesiredChanged: (full) => {
        metrics.appliedRevision.set(cache.appliedRevision());
        if (full) {
          cacheHealth.rebuilt();
          desiredKnown = true;
        }
        reconcile();
        devices?.refresh();
        registryPeers.refresh();
      },
      onStateChange: (s: LinkState) => { metrics.connected.set(s.connected ? 1 : 0); if (s.connected) metrics.reconnects.inc(); linkUp = s.connected; hubReporter.linkChanged(s.connected); },
    },
    { hubUrl: cred.hub, credential: cred.credential, readDeadlineMs: options.readDeadlineMs ?? 30_000, backoff: { maxMs: options.backoffMaxMs ?? 30_000 }, logDir: join(options.dataDir, 'logs') },
  );

  const reporter = new NodeReporter({ outbox, cacheHealth, metrics, statuses: () => runtime.statuses() }, options.nodeStatusIntervalMs ?? 5_000);

  const status = () => {
    const s = link.state;
    return {
      node: cred.node,
      unit: cred.unit,
      hub: cred.hub,
      cloud: s.connected ? `connected since ${new Date(s.since).toISOString()}` : `disconnected since ${new Date(s.since).toISOString()}`,
      cloudError: s.connected ? undefined : s.lastError,
      appliedRevision: cache.appliedRevision(),
      outboxDepth: outbox.depth(),
      droppedEvents: outbox.droppedEvents(),
      ...(options.mqtt ? { mqtt: devicesError ? { error: devicesError } : { ...devices?.addresses(), telemetryQueued: outbox.telemetryQueued(), droppedTelemetry: outbox.droppedTelemetry() } } : {}),
      cache: cacheHealth.current,
      instances: Object.fromEntries(runtime.statuses()),
      registry: serviceRegistry.status(),
      registryPeers: registryPeers.status(),
    };
  };
  const localApi = createLocalApi({ registry, status, routes: [serviceRegistry.routes] });

  const components: Component[] = [
    // Exec'd commands a SIGKILLed agent left running (README "outpost exec") end first.
    new ExecLeftovers({ store: execGroups, log: nodeLog.child({ component: 'exec' }), clock: systemClock, procFs: hasProcFs() }, { graceMs: 2_000 }),
    { name: 'registry', start: () => serviceRegistry.start(), stop: () => serviceRegistry.stop() },
    { name: 'registry-hub', start: async () => hubReporter.start(), stop: async () => hubReporter.stop() },
    // Before the link: the hello tells the hub the peer endpoint.
    registryPeers,
    // Registry lookups of a (re)started agent wait, bounded, until its peers had a chance to send their records.
    { name: 'registry-sync-gate', start: async () => serviceRegistry.holdLookupsUntil(peersSynced(() => (registryPeers.status().peers ?? []) as PeerState[])), stop: async () => {} },
    {
      name: 'local-api',
      start: () => new Promise<void>((resolve, reject) => { localApi.once('error', reject); localApi.listen(options.localApiPort, options.localApiHost, () => resolve()); }),
      stop: () => new Promise<void>((resolve) => { localApi.close(() => resolve()); localApi.closeAllConnections(); }),
    },
    // Offline first: instances start from the cache before the hub is even dialled.
    { name: 'runtime', start: async () => { await runtime.start(); reconcile(); }, stop: async () => { if (options.stopInstancesOnExit) await runtime.stopAllInstances(); await runtime.stop(); } },
    { name: 'node-status', start: async () => reporter.start(), stop: async () => reporter.stop() },
    {
      // A broker that cannot listen (port taken) is reported, not fatal: workloads come first.
      name: 'devices',
      start: async () => {
        try {
          await devices?.start();
        } catch (err) {
          devicesError = `MQTT broker not started: ${(err as Error).message}`;
          nodeLog.error({ err, listen: options.mqtt?.listen }, devicesError);
          await devices?.stop().catch(() => {});
        }
      },
      stop: async () => { if (!devicesError) await devices?.stop(); },
    },
    { name: 'link', start: async () => link.start(), stop: () => link.stop() },
  ];
  const onStopError = (name: string, err: unknown) => nodeLog.error({ err, component: name }, 'stop failed');
  try {
    await startAll(components, 30_000, onStopError);
  } catch (err) {
    db.close();
    runtimeDb.close();
    serviceRegistry.close();
    throw err;
  }
  const addr = localApi.address() as AddressInfo;
  const localApiUrl = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  // For `outpost agent status --data DIR`: where this running agent answers.
  const infoFile = join(options.dataDir, 'agent.json');
  writeFileSync(infoFile, `${JSON.stringify({ pid: process.pid, localApi: localApiUrl, node: cred.node, unit: cred.unit, startedAt: new Date().toISOString() }, null, 2)}\n`, { mode: 0o600 });
  nodeLog.info({ localApi: localApiUrl, dataDir: options.dataDir, cachedInstances: cache.instances().length }, 'agent running');

  return {
    node: cred.node,
    unit: cred.unit,
    localApiUrl,
    async stop() {
      await stopAll(components, 30_000, onStopError);
      rmSync(infoFile, { force: true });
      db.close();
      runtimeDb.close();
      serviceRegistry.close();
    },
  };
}

/** Returns the stored credential, or joins with the token (retrying while the hub is unreachable). */
async function ensureCredential(options: AgentOptions, log: Logger, signal?: AbortSignal): Promise<NodeCredential> {
  const path = join(options.dataDir, 'credential.json');
  const stored = readCredential(path);
  if (stored) {
    if (stored.node !== options.name) {
      throw new OutpostError('BAD_REQUEST', `data dir ${options.dataDir} belongs to node "${stored.node}", not "${options.name}"; use another --data directory`);
    }
    // --hub may change (hub moved); the credential stays valid.
    return { ...stored, hub: options.hubUrl || stored.hub };
  }
  if (!options.token) throw new OutpostError('BAD_REQUEST', `node "${options.name}" has not joined yet: pass --token (create one with \`outpost token create --unit UNIT\`)`);
  const backoff = new Backoff({ maxMs: options.backoffMaxMs ?? 30_000 });
  for (;;) {
    try {
      const cred = await joinHub(options.hubUrl, options.token, options.name, options.labels, signal);
      writeCredential(path, cred);
      log.info({ node: cred.node, unit: cred.unit }, 'joined the hub; node credential stored');
      return cred;
    } catch (err) {
      if (!isOutpostError(err, 'UNAVAILABLE')) throw err;
      const delay = backoff.next();
      log.warn({ reason: err.message, retryInMs: delay }, 'cannot join yet; retrying');
      await sleep(delay, signal);
    }
  }
}
