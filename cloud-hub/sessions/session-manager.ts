import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { EdgeApp, EdgeNode, Instance, NodeUnit } from '../../shared/api/index.js';
import type { Logger } from '../../shared/logger.js';
import { CloseCodes, MAX_FRAME_BYTES } from '../../shared/protocol/frames.js';
import type { HubSecretStore } from '../auth/secret-store.js';
import type { CacheEvent, ObjectCache } from '../cache/object-cache.js';
import type { HubMetrics } from '../metrics.js';
import { AdmissionQueue, type AdmissionOptions } from './admission.js';
import { AgentSession, type SessionHooks, type SessionOptions } from './agent-session.js';
import { configAudience } from '../configs/config-scope.js';
import { deviceHomes } from '../devices/device-scope.js';
import { appSelectsUnit, keyOf, onlyStatusChanged, unitLabels } from './scope.js';
import type { OpenRequest } from '../../shared/protocol/streams.js';
import type { TunnelStream } from '../../shared/tunnel/tunnel-stream.js';
import { disconnectedError } from '../tunnel/disconnected-error.js';

export interface SessionManagerDeps {
  cache: ObjectCache;
  secrets: HubSecretStore;
  hooks: Omit<SessionHooks, 'onClose'> & { onDisconnect(node: string): void };
  log: Logger;
  metrics: HubMetrics;
  now?: () => number;
}

/** Accepts agent WebSockets, authenticates them, and routes cache changes to the right sessions. */
export class SessionManager {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  private readonly sessions = new Map<string, AgentSession>();
  private readonly byUnit = new Map<string, Set<AgentSession>>();
  /** Every open session, including those that have not said hello yet (closed on stop). */
  private readonly open = new Set<AgentSession>();
  private unsubscribe: (() => void) | undefined;

  private readonly admission: AdmissionQueue;
  /** Each node's instance log directory, from its last hello (named in node-disconnected errors). */
  private readonly logDirs = new Map<string, string>();

  constructor(private readonly deps: SessionManagerDeps, private readonly options: SessionOptions & { admission?: AdmissionOptions }) {
    this.admission = new AdmissionQueue(options.admission);
  }

  /** Sessions waiting for admission (their hello is queued). */
  get admissionQueue(): number {
    return this.admission.waiting;
  }

  start(): void {
    this.unsubscribe = this.deps.cache.onChange((e) => this.route(e));
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.admission.stop();
    const open = [...this.open];
    for (const s of open) s.close(CloseCodes.SHUTDOWN, 'hub shutting down');
    // close() terminates a peer that does not answer within 2 s, so this wait is bounded.
    await Promise.all(open.map((s) => s.closedPromise));
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  get count(): number {
    return this.sessions.size;
  }

  isConnected(node: string): boolean {
    return this.sessions.has(node);
  }

  /**
   * Opens a tunnel stream to the node's agent (issue 8). Rejects with NODE_DISCONNECTED (with the
   * since-time), STREAM_LIMIT, or the agent's refusal (its code: NOT_FOUND, FORBIDDEN, ...).
   */
  openStream(node: string, req: OpenRequest): Promise<TunnelStream> {
    const session = this.sessions.get(node);
    if (!session || session.state !== 'live') return Promise.reject(disconnectedError(this.deps.cache, node, req.target.instance, this.logDirs.get(node)));
    return session.streams.open(req);
  }

  /** Sum of revisions not yet acknowledged, over all sessions. */
  revisionsBehind(): number {
    let sum = 0;
    for (const s of this.sessions.values()) sum += s.revisionsBehind;
    return sum;
  }

  /** Called by the HTTP server for `GET /agent/v1/connect` upgrades. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const auth = req.headers.authorization ?? '';
    const credential = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const authenticated = credential ? this.deps.secrets.authenticateNode(credential) : undefined;
    const node = authenticated ? (this.deps.cache.get('EdgeNode', authenticated.node) as EdgeNode | undefined) : undefined;
    // The unit of the credential is the one it joined; the node's unit now may differ (NodeUnit
    // spec.nodes / spec.selector): the session is scoped to the current one.
    const identity = authenticated && node ? { ...authenticated, unit: node.spec.unit } : authenticated;
    if (!identity || !node) {
      this.deps.metrics.authFailures.inc({ reason: identity ? 'node-deleted' : 'bad-credential' });
      const body = JSON.stringify({
        code: 'OUTPOST_UNAUTHORIZED',
        message: identity ? `node ${identity.node} was deleted; join it again with a new token` : 'node credential is not valid',
      });
      socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const log = this.deps.log.child({ node: identity.node, unit: identity.unit });
      const session = new AgentSession(
        {
          ws, scope: identity, cache: this.deps.cache, log, metrics: this.deps.metrics, now: this.deps.now ?? Date.now, admission: this.admission,
          hooks: {
            ...this.deps.hooks,
            onHello: (scope, hello) => {
              if (hello.logDir) this.logDirs.set(scope.node, hello.logDir);
              this.deps.hooks.onHello(scope, hello);
            },
            onClose: (s) => this.onSessionClosed(s),
            onClaim: (s) => this.claim(s, log),
          },
        },
        this.options,
      );
      this.open.add(session);
      this.deps.metrics.sessionsOpened.inc();
      log.info('agent session opened');
    });
  }

  /**
   * Makes a session that said hello its node's session, replacing an older one (an agent that
   * restarted before the hub noticed its old connection died). Registering at the hello, not at
   * the upgrade, matters under load: an agent whose handshake timed out retries, and its
   * abandoned upgrade, still queued in the hub, used to replace the retry's live session
   * (issue 7: 311 of 5 000 agents 'replaced by a newer session' right after connecting).
   */
  private claim(session: AgentSession, log: Logger): boolean {
    const { node, unit } = session.scope;
    if (!this.deps.cache.get('EdgeNode', node)) {
      session.close(CloseCodes.FORBIDDEN, 'node deleted');
      return false;
    }
    const previous = this.sessions.get(node);
    if (previous && previous !== session) {
      log.info('replacing previous session of this node');
      this.detach(previous);
      previous.close(CloseCodes.REPLACED, 'replaced by a newer session');
    }
    this.sessions.set(node, session);
    let unitSet = this.byUnit.get(unit);
    if (!unitSet) this.byUnit.set(unit, (unitSet = new Set()));
    unitSet.add(session);
    this.deps.metrics.sessions.set(this.sessions.size);
    return true;
  }

  /** Closes a node's session (node deleted). */
  disconnect(node: string, reason: string): void {
    this.sessions.get(node)?.close(CloseCodes.FORBIDDEN, reason);
  }

  private onSessionClosed(session: AgentSession): void {
    this.open.delete(session);
    if (this.sessions.get(session.scope.node) !== session) return; // replaced: the new one owns the node
    this.detach(session);
    this.deps.log.info({ node: session.scope.node }, 'agent session closed');
    // A session that never said hello never made the node Ready: nothing to undo.
    if (session.wasLive) this.deps.hooks.onDisconnect(session.scope.node);
  }

  private detach(session: AgentSession): void {
    if (this.sessions.get(session.scope.node) === session) this.sessions.delete(session.scope.node);
    this.byUnit.get(session.scope.unit)?.delete(session);
    this.deps.metrics.sessions.set(this.sessions.size);
  }

  private route(event: CacheEvent): void {
    const { object, oldObject } = event;
    switch (object.kind) {
      case 'Instance': {
        const nodes = new Set([(object.spec as { node: string }).node, (oldObject?.spec as { node?: string } | undefined)?.node]);
        for (const n of nodes) if (n) this.sessions.get(n)?.handleChange(event);
        return;
      }
      case 'NodeUnit':
      case 'UnitPeers':
        for (const s of this.byUnit.get(object.metadata.name) ?? []) s.handleChange(event);
        return;
      case 'EdgeApp':
        // A status-only write (the scheduler rewrites the app's status at every instance report
        // of a rollout) is never sent down (AgentSession.handleChange drops it): skip the walk
        // over every session of every selected unit (issue 7: 16 000 sessions x each report).
        if (event.type === 'MODIFIED' && onlyStatusChanged(oldObject, object)) return;
        for (const [unitName, set] of this.byUnit) {
          if (set.size === 0) continue;
          const unit = this.deps.cache.get('NodeUnit', unitName) as NodeUnit | undefined;
          const selects = appSelectsUnit(object as EdgeApp, unitName, unit) || (oldObject !== undefined && appSelectsUnit(oldObject as EdgeApp, unitName, unit));
          if (selects) for (const s of set) s.handleChange(event);
        }
        return;
      case 'EdgeConfig': {
        const { cache } = this.deps;
        const units = [...this.byUnit.keys()].map((name) => ({ name, labels: unitLabels(cache, name) }));
        const audience = configAudience(object.metadata.name, cache.list('EdgeApp') as EdgeApp[], cache.list('Instance') as Instance[], units,
          (app, unitName) => appSelectsUnit(app, unitName, cache.get('NodeUnit', unitName) as NodeUnit | undefined));
        for (const s of this.sessions.values()) {
          if (audience.units.has(s.scope.unit) || audience.nodes.has(s.scope.node) || s.holds(keyOf(object))) s.handleChange(event);
        }
        return;
      }
      case 'Device':
      case 'DeviceCredential':
      case 'DeviceModel': {
        // A device (or its credential) concerns the sessions of its homes, before and after the
        // change; a model those holding it or homing a device of that model.
        const devices = object.kind === 'Device' ? [object, oldObject] : object.kind === 'DeviceCredential' ? [this.deps.cache.get('Device', object.metadata.name)]
          : this.deps.cache.list('Device').filter((d) => (d.spec as { model: string }).model === object.metadata.name);
        const homes = deviceHomes(devices);
        for (const s of this.sessions.values()) {
          if (homes.nodes.has(s.scope.node) || homes.units.has(s.scope.unit) || s.holds(keyOf(object))) s.handleChange(event);
        }
        return;
      }
      case 'EdgeNode':
        if (event.type === 'DELETED') this.disconnect(object.metadata.name, 'node deleted');
        else if (oldObject && (oldObject as EdgeNode).spec.unit !== (object as EdgeNode).spec.unit) {
          // Its scope (unit, apps, instances) changed: the agent reconnects and resyncs by digest.
          this.sessions.get(object.metadata.name)?.close(CloseCodes.RESCOPED, `node moved to unit ${(object as EdgeNode).spec.unit}`);
        }
        return;
    }
  }
}
