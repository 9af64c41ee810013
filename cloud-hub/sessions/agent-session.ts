import type { WebSocket, RawData } from 'ws';
import type { AnyObject } from '../../shared/api/index.js';
import { isOutpostError, OutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { CloseCodes, PROTOCOL_VERSION, parseAgentFrame, reportItemProblem, type AgentFrame, type HelloFrame, type HubFrame, type ObjectKey, type RawReportItem, type ReportItem } from '../../shared/protocol/frames.js';
import { objectDigest } from '../../shared/hash.js';
import { DEFAULT_MAX_STREAMS_PER_NODE } from '../../shared/protocol/streams.js';
import { StreamMux } from '../../shared/tunnel/stream-mux.js';
import type { CacheEvent, ObjectCache } from '../cache/object-cache.js';
import type { HubMetrics } from '../metrics.js';
import type { AdmissionQueue } from './admission.js';
import { configScopeChanged, desiredSet, inScope, keyOf, onlyStatusChanged, projectForNode, type NodeScope } from './scope.js';

/** Target size of one sync frame; well under MAX_FRAME_BYTES so one object more never overflows. */
const SYNC_CHUNK_BYTES = 1024 * 1024;

function chunkBySize(objects: AnyObject[], limit: number): AnyObject[][] {
  const chunks: AnyObject[][] = [[]];
  let size = 0;
  for (const o of objects) {
    const n = JSON.stringify(o).length;
    const current = chunks[chunks.length - 1] ?? [];
    if (current.length > 0 && size + n > limit) {
      chunks.push([o]);
      size = n;
    } else {
      current.push(o);
      size += n;
    }
  }
  return chunks;
}

/**
 * The encoded one-object delta frame, shared by every session sent the same projected object at
 * the same revision (issue 7: an app update to 5 000 sessions encoded the frame 5 000 times).
 */
const deltaTexts = new WeakMap<AnyObject, { revision: number; text: string }>();
function deltaFrameText(projected: AnyObject, revision: number): () => string {
  return () => {
    const hit = deltaTexts.get(projected);
    if (hit?.revision === revision) return hit.text;
    const text = JSON.stringify({ type: 'sync', revision, objects: [projected], deletes: [] });
    deltaTexts.set(projected, { revision, text });
    return text;
  };
}

export interface SessionOptions {
  /** WebSocket ping period, ms. */
  pingIntervalMs: number;
  /** Close the session when nothing (frame or pong) arrived for this long, ms. */
  readDeadlineMs: number;
  /** Above this many buffered bytes the session stops streaming and resyncs once drained. */
  highWaterBytes: number;
  /** Tunnel streams open at once on this session (issue 8). Default DEFAULT_MAX_STREAMS_PER_NODE. */
  maxStreams?: number;
}

export interface SessionHooks {
  /** The hello was accepted; the node is live. */
  onHello(scope: NodeScope, hello: HelloFrame): void;
  onAck(scope: NodeScope, revision: number): void;
  /** Stores a batch of outbox items; resolves with the highest seq handled and the refused ones. */
  onReport(scope: NodeScope, items: ReportItem[], session: AgentSession): Promise<{ rejected: { seq: number; code: string; message: string }[] }>;
  onClose(session: AgentSession): void;
  /**
   * The agent said hello: the manager makes this the node's session (replacing an older one)
   * or refuses it (false: it closed the session). Until then a session holds no place, so an
   * upgrade the agent already gave up on (handshake timeout while the hub was busy, still in
   * the hub's queues) never displaces the live session of its retry.
   */
  onClaim?(session: AgentSession): boolean;
}

const keyString = (k: ObjectKey) => `${k.kind}/${k.name}`;

/** One agent's WebSocket session: sync down, outbox up, liveness both ways. */
export class AgentSession {
  state: 'awaiting-hello' | 'live' | 'closed' = 'awaiting-hello';
  /** What the agent holds (or will once in-flight frames land): key -> resourceVersion. */
  private readonly sent = new Map<string, { key: ObjectKey; digest: string }>();
  /** Instances this node held during this session: it may still report events about them. */
  private readonly instancesSeen = new Set<string>();
  private sentRevision = 0;
  ackedRevision = 0;
  private lastHeard: number;
  private readonly timer: NodeJS.Timeout;
  private resyncNeeded = false;
  private reportChain: Promise<void> = Promise.resolve();
  /** Tunnel streams (logs, exec, port-forward) on this session: binary frames. */
  readonly streams: StreamMux;

  constructor(
    private readonly deps: { ws: WebSocket; scope: NodeScope; cache: ObjectCache; hooks: SessionHooks; log: Logger; metrics: HubMetrics; now: () => number; admission: AdmissionQueue },
    private readonly options: SessionOptions,
  ) {
    this.lastHeard = deps.now();
    const ws = deps.ws;
    this.streams = new StreamMux(
      { send: (frame, done) => (ws.readyState === ws.OPEN ? ws.send(frame, { binary: true }, () => done()) : done()) },
      { role: 'hub', maxStreams: options.maxStreams ?? DEFAULT_MAX_STREAMS_PER_NODE },
    );
    deps.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    deps.ws.on('pong', () => { this.lastHeard = deps.now(); });
    deps.ws.on('close', () => this.closed());
    deps.ws.on('error', (err) => deps.log.debug({ err }, 'session socket error'));
    this.timer = setInterval(() => this.tick(), Math.min(options.pingIntervalMs, 1000));
    this.timer.unref();
  }

  get scope(): NodeScope {
    return this.deps.scope;
  }

  get revisionsBehind(): number {
    return Math.max(0, this.sentRevision - this.ackedRevision);
  }

  /** `reason` must be short ASCII (WebSocket limits it to 123 bytes): never echo peer input in it. */
  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    try {
      this.deps.ws.close(code, Buffer.byteLength(reason) <= 123 ? reason : 'closing');
    } catch {
      this.deps.ws.terminate();
    }
    // A peer that never answers the close handshake must not hold the socket open.
    setTimeout(() => this.deps.ws.terminate(), 2000).unref();
  }

  /** Routes one cache change to this session (the manager calls it only for plausible ones). */
  handleChange(event: CacheEvent): void {
    if (this.state !== 'live') return;
    const { cache, scope } = this.deps;
    if (event.object.kind === 'NodeUnit') {
      // Unit labels decide which apps select the unit: recompute the whole set.
      if (!onlyStatusChanged(event.oldObject, event.object)) this.resync();
      return;
    }
    if (configScopeChanged(event, scope, cache)) {
      this.resync();
      return;
    }
    const newIn = event.type !== 'DELETED' && inScope(event.object, scope, cache);
    const oldIn = event.oldObject !== undefined && inScope(event.oldObject, scope, cache);
    if (newIn) {
      if (oldIn && onlyStatusChanged(event.oldObject, event.object)) return;
      const projected = projectForNode(event.object, scope);
      this.sendSync({ revision: event.revision, objects: [projected], deletes: [] }, {}, deltaFrameText(projected, event.revision));
    } else if (oldIn || this.sent.has(keyString(keyOf(event.object)))) {
      this.sendSync({ revision: event.revision, objects: [], deletes: [keyOf(event.object)] });
    }
  }

  /**
   * Sends the difference between what the agent holds and its desired set, compared by content
   * digest (not revision: a hub restored from a backup reuses revision numbers). Large
   * differences go in several frames under the frame limit; only the last carries `keys` and
   * the new revision, so an ack never covers a part not yet received.
   */
  resync(): void {
    const { cache, scope } = this.deps;
    const set = desiredSet(scope, cache).map((o) => projectForNode(o, scope));
    const want = new Map(set.map((o) => [keyString(keyOf(o)), o]));
    const objects: AnyObject[] = set.filter((o) => this.sent.get(keyString(keyOf(o)))?.digest !== objectDigest(o));
    const deletes = [...this.sent.entries()].filter(([k]) => !want.has(k)).map(([, v]) => v.key);
    this.resyncNeeded = false;
    const chunks = chunkBySize(objects, SYNC_CHUNK_BYTES);
    chunks.forEach((chunk, i) => {
      const last = i === chunks.length - 1;
      this.sendSync(
        last ? { revision: cache.revision, objects: chunk, deletes, keys: set.map(keyOf) } : { revision: this.ackedRevision, objects: chunk, deletes: [] },
        { force: true },
      );
    });
  }

  /** `text`, when given, is the batch already encoded (a delta shared by many sessions). */
  private sendSync(batch: { revision: number; objects: AnyObject[]; deletes: ObjectKey[]; keys?: ObjectKey[] }, opts: { force?: boolean } = {}, text?: () => string): void {
    // Never queue unbounded data for a slow agent: past the high-water mark, drop deltas (all of
    // them, so that no later ack can cover a dropped one) and resync once drained.
    if (!opts.force && (this.resyncNeeded || this.deps.ws.bufferedAmount > this.options.highWaterBytes)) {
      if (!this.resyncNeeded) this.deps.metrics.resyncs.inc();
      this.resyncNeeded = true;
      return;
    }
    for (const o of batch.objects) {
      this.sent.set(keyString(keyOf(o)), { key: keyOf(o), digest: objectDigest(o) });
      if (o.kind === 'Instance' && this.instancesSeen.size < 100_000) this.instancesSeen.add(o.metadata.name);
    }
    for (const d of batch.deletes) this.sent.delete(keyString(d));
    this.sentRevision = Math.max(this.sentRevision, batch.revision);
    this.deps.metrics.syncObjects.inc(batch.objects.length);
    this.send({ type: 'sync', ...batch }, text);
  }

  private send(frame: HubFrame, text?: () => string): void {
    if (this.state === 'closed' || this.deps.ws.readyState !== this.deps.ws.OPEN) return;
    this.deps.metrics.framesOut.inc({ type: frame.type });
    this.deps.ws.send(text ? text() : JSON.stringify(frame));
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.lastHeard = this.deps.now();
    let frame: AgentFrame;
    if (isBinary) {
      try {
        if (this.state !== 'live') throw new OutpostError('PROTOCOL', 'stream frame before the session is live');
        this.streams.receive(data as Buffer);
      } catch (err) {
        this.protocolError(err);
      }
      return;
    }
    try {
      frame = parseAgentFrame(data.toString());
    } catch (err) {
      this.protocolError(err);
      return;
    }
    this.deps.metrics.framesIn.inc({ type: frame.type });
    if (this.state === 'awaiting-hello' && frame.type !== 'hello') return this.protocolError(new OutpostError('PROTOCOL', `expected hello (and then welcome) before ${frame.type}`));
    switch (frame.type) {
      case 'hello':
        return this.onHello(frame);
      case 'ack':
        this.ackedRevision = Math.min(frame.revision, this.sentRevision);
        this.deps.hooks.onAck(this.deps.scope, this.ackedRevision);
        return;
      case 'report':
        return this.onReport(frame.items);
    }
  }

  private onHello(hello: HelloFrame): void {
    if (this.state !== 'awaiting-hello' || this.helloQueued) return this.protocolError(new OutpostError('PROTOCOL', 'duplicate hello'));
    if (hello.protocol !== PROTOCOL_VERSION) return this.protocolError(new OutpostError('PROTOCOL', `protocol ${hello.protocol} not supported (hub speaks ${PROTOCOL_VERSION})`));
    if (this.deps.hooks.onClaim && !this.deps.hooks.onClaim(this)) return;
    this.helloQueued = true;
    this.deps.admission.enqueue(() => this.admit(hello), () => this.state === 'closed');
  }

  private helloQueued = false;

  private admit(hello: HelloFrame): void {
    this.state = 'live';
    for (const c of hello.cached) {
      this.sent.set(keyString(c), { key: { kind: c.kind, name: c.name }, digest: c.digest });
      if (c.kind === 'Instance') this.instancesSeen.add(c.name);
    }
    this.ackedRevision = hello.appliedRevision;
    const { node, unit } = this.deps.scope;
    this.send({ type: 'welcome', node, unit, revision: this.deps.cache.revision });
    this.resync();
    this.deps.hooks.onHello(this.deps.scope, hello);
  }

  /** Whether the agent holds (or is being sent) this object. */
  holds(key: ObjectKey): boolean {
    return this.sent.has(keyString(key));
  }

  /** Whether this node held the instance during this session (events about it are its own). */
  heldInstance(name: string): boolean {
    return this.instancesSeen.has(name);
  }

  private onReport(raw: RawReportItem[]): void {
    // Items are checked one by one: one bad row is refused (and acknowledged as refused), it
    // never blocks the rows behind it. Batches are handled in order, so an ack covers all before it.
    const ackSeq = Math.max(...raw.map((i) => i.seq));
    const invalid: { seq: number; code: string; message: string }[] = [];
    const items: ReportItem[] = [];
    for (const r of raw) {
      const problem = reportItemProblem(r);
      if (problem) invalid.push({ seq: r.seq, code: 'OUTPOST_INVALID', message: problem });
      else items.push(r as ReportItem);
    }
    this.reportChain = this.reportChain.then(async () => {
      try {
        const { rejected } = items.length > 0 ? await this.deps.hooks.onReport(this.deps.scope, items, this) : { rejected: [] };
        this.send({ type: 'reported', ackSeq, rejected: [...invalid, ...rejected] });
      } catch (err) {
        // Not stored: no ack. The agent re-sends after reconnecting.
        this.deps.log.error({ err }, 'storing report failed; closing session so the agent retries');
        this.close(1011, 'report not stored');
      }
    });
  }

  private protocolError(err: unknown): void {
    const message = isOutpostError(err) ? err.message : 'invalid frame';
    this.deps.metrics.protocolErrors.inc();
    this.deps.log.warn({ message }, 'protocol error from agent; closing session');
    this.send({ type: 'error', code: isOutpostError(err) ? err.code : 'OUTPOST_PROTOCOL', message });
    this.close(CloseCodes.PROTOCOL_ERROR, 'protocol error');
  }

  private tick(): void {
    if (this.state === 'closed') return;
    if (this.deps.now() - this.lastHeard > this.options.readDeadlineMs) {
      this.deps.log.warn({ deadlineMs: this.options.readDeadlineMs }, 'agent missed its read deadline; terminating session');
      this.deps.ws.terminate();
      return;
    }
    if (this.resyncNeeded && this.deps.ws.bufferedAmount <= this.options.highWaterBytes / 2) {
      this.resyncNeeded = false;
      this.resync();
    }
    this.pingCountdown -= Math.min(this.options.pingIntervalMs, 1000);
    if (this.pingCountdown <= 0) {
      this.pingCountdown = this.options.pingIntervalMs;
      if (this.deps.ws.readyState === this.deps.ws.OPEN) this.deps.ws.ping();
    }
  }

  private pingCountdown = 0;

  /** Whether the session got as far as a hello (a node that never did was never live). */
  wasLive = false;

  private resolveClosed: () => void = () => undefined;
  /** Settles once the socket is closed. */
  readonly closedPromise = new Promise<void>((resolve) => { this.resolveClosed = resolve; });

  private closed(): void {
    if (this.state === 'closed') return;
    this.wasLive = this.state === 'live';
    this.state = 'closed';
    this.resolveClosed();
    clearInterval(this.timer);
    const { unit, node } = this.deps.scope;
    this.streams.closeAll(new OutpostError('NODE_DISCONNECTED', `${unit}/${node} disconnected from the hub; its streams are closed`));
    this.deps.hooks.onClose(this);
  }
}
