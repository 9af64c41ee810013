import { hostname, cpus, totalmem } from 'node:os';
import WebSocket from 'ws';
import { Backoff, type BackoffOptions } from '../../shared/backoff.js';
import type { Logger } from '../../shared/logger.js';
import { MAX_FRAME_BYTES, MAX_REPORT_ITEMS, PROTOCOL_VERSION, parseHubFrame, type HelloFrame, type HubFrame, type SyncFrame } from '../../shared/protocol/frames.js';
import { OUTPOST_VERSION } from '../../shared/version.js';
import type { DesiredCache } from '../cache/desired-cache.js';
import type { Outbox } from '../cache/outbox.js';
import type { FrameSink } from '../../shared/tunnel/stream-mux.js';
import { bulkClientOptions } from '../../shared/tunnel/bulk-client-options.js';
import { HubUrlRing } from './hub-urls.js';

/** A session that lasted this long resets the reconnect backoff. */
const HEALTHY_SESSION_MS = 10_000;

export interface HubLinkOptions {
  /** Hub base URL, http(s)://host:port; or several replicas' URLs separated by commas (the next one is dialled after a failure). */
  hubUrl: string;
  credential: string;
  /** Close and reconnect when nothing arrived from the hub for this long, ms. Default 30 000. */
  readDeadlineMs?: number;
  /** Reconnect backoff (full jitter). Default 500 ms doubling up to 30 s. */
  backoff?: BackoffOptions;
  /** Outbox rows per report frame. Default 200. */
  reportBatch?: number;
  /** Instance log directory, told to the hub in hello (for its node-disconnected errors). */
  logDir?: string;
}

export type LinkState = { connected: true; since: number } | { connected: false; since: number; lastError?: string };

export interface HubLinkDeps {
  cache: DesiredCache;
  outbox: Outbox;
  log: Logger;
  /** Called after a sync batch is committed; `full` when it carried the complete key list. */
  onDesiredChanged(full: boolean): void;
  onStateChange?(state: LinkState): void;
  /** Tunnel streams (issue 8): binary frames of each session go to the receiver `attach` returns. */
  tunnel?: { attach(sink: FrameSink): { receive(data: Buffer): void }; detach(reason: string): void };
  /** host:port of the registry peer listener, told to the hub in every hello (issue 6). */
  peerEndpoint?(): string | undefined;
}

/**
 * The agent's WebSocket to the hub: dials, says hello with what its cache holds, commits each
 * sync batch before acknowledging it, drains the outbox one batch at a time, and reconnects with
 * exponential backoff and full jitter. Offline is normal: nothing here blocks the agent.
 */
export class HubLink {
  private ws: WebSocket | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private inflightSeq: number | undefined;
  private readonly backoff: Backoff;
  private linkState: LinkState = { connected: false, since: Date.now() };
  private readonly readDeadlineMs: number;
  private healthyTimer: NodeJS.Timeout | undefined;
  private readonly hubs: HubUrlRing;

  constructor(private readonly deps: HubLinkDeps, private readonly options: HubLinkOptions) {
    this.backoff = new Backoff(options.backoff);
    this.readDeadlineMs = options.readDeadlineMs ?? 30_000;
    this.hubs = new HubUrlRing(options.hubUrl);
    deps.outbox.onPut(() => this.flushOutbox());
  }

  get state(): LinkState {
    return this.linkState;
  }

  start(): void {
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.healthyTimer);
    clearTimeout(this.deadlineTimer);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1001, 'agent stopping');
      setTimeout(() => { ws.terminate(); resolve(); }, 2000).unref();
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const url = `${this.hubs.current().replace(/^http/, 'ws')}/agent/v1/connect`;
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${this.options.credential}` }, handshakeTimeout: 10_000, maxPayload: MAX_FRAME_BYTES, ...bulkClientOptions(url) });
    this.ws = ws;
    this.inflightSeq = undefined;
    let failure: string | undefined;
    let streams: { receive(data: Buffer): void } | undefined;
    ws.on('unexpected-response', (_req, res) => {
      failure = `hub refused the connection: HTTP ${res.statusCode}`;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString().slice(0, 500);
        let reason = text;
        try {
          reason = (JSON.parse(text) as { message?: string }).message ?? text;
        } catch {
          // not JSON: keep the text
        }
        failure = `hub refused the connection: HTTP ${res.statusCode}: ${reason}`;
        if (!this.linkState.connected) this.linkState = { ...this.linkState, lastError: failure };
        this.deps.log.error({ status: res.statusCode, reason }, 'hub refused the agent connection');
        ws.terminate();
      });
      res.on('error', () => ws.terminate());
    });
    ws.on('open', () => {
      this.touch();
      this.send(this.hello());
      streams = this.deps.tunnel?.attach({ send: (frame, done) => (ws.readyState === WebSocket.OPEN ? ws.send(frame, { binary: true }, () => done()) : done()) });
    });
    ws.on('message', (data, isBinary) => {
      this.touch();
      if (isBinary) {
        if (!streams) return this.protocolError('binary frame from hub');
        try {
          streams.receive(data as Buffer);
        } catch (err) {
          this.protocolError((err as Error).message);
        }
        return;
      }
      let frame: HubFrame;
      try {
        frame = parseHubFrame(data.toString());
      } catch (err) {
        return this.protocolError((err as Error).message);
      }
      try {
        this.handle(frame);
      } catch (err) {
        // E.g. the disk is full: drop the link (nothing was acknowledged) and retry later.
        this.deps.log.error({ err, frame: frame.type }, 'handling a hub frame failed; reconnecting');
        ws.terminate();
      }
    });
    ws.on('ping', () => this.touch());
    ws.on('error', (err) => { failure = err.message; });
    ws.on('close', (code, reason) => {
      clearTimeout(this.deadlineTimer);
      clearTimeout(this.healthyTimer);
      if (streams) this.deps.tunnel?.detach(failure ?? `closed (${code})`);
      if (this.ws !== ws) return;
      this.ws = undefined;
      const lastError = failure ?? `closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`;
      if (this.linkState.connected) this.setState({ connected: false, since: Date.now(), lastError });
      else this.linkState = { ...this.linkState, lastError };
      if (this.stopped) return;
      const delay = this.backoff.next();
      // Several hub replicas: a lost or refused session tries the next one (any replica serves any node).
      const from = this.hubs.current();
      const to = this.hubs.next();
      this.deps.log.info({ reason: lastError, retryInMs: delay, ...(this.hubs.size > 1 ? { from, to } : {}) }, 'hub link down; reconnecting');
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private hello(): HelloFrame {
    return {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      appliedRevision: this.deps.cache.appliedRevision(),
      agentVersion: OUTPOST_VERSION,
      hostname: hostname().slice(0, 253),
      ...(this.options.logDir ? { logDir: this.options.logDir.slice(0, 4096) } : {}),
      capacity: { cpus: cpus().length, memoryBytes: totalmem() },
      cached: this.deps.cache.cachedKeys(),
      ...(this.deps.peerEndpoint?.() ? { peerEndpoint: this.deps.peerEndpoint() } : {}),
    };
  }

  private handle(frame: HubFrame): void {
    switch (frame.type) {
      case 'welcome':
        // Reset the backoff only once the session proved healthy, so that a hub that accepts
        // and then drops every session is not hammered at the initial delay.
        clearTimeout(this.healthyTimer);
        this.healthyTimer = setTimeout(() => this.backoff.reset(), HEALTHY_SESSION_MS);
        this.healthyTimer.unref();
        this.setState({ connected: true, since: Date.now() });
        this.deps.log.info({ node: frame.node, unit: frame.unit, hubRevision: frame.revision }, 'connected to hub');
        this.flushOutbox();
        return;
      case 'sync':
        return this.applySync(frame);
      case 'reported':
        this.deps.outbox.ack(frame.ackSeq);
        for (const r of frame.rejected) this.deps.log.warn({ seq: r.seq, code: r.code, reason: r.message }, 'hub refused a report item; dropped');
        if (this.inflightSeq !== undefined && frame.ackSeq >= this.inflightSeq) this.inflightSeq = undefined;
        this.flushOutbox();
        return;
      case 'error':
        this.deps.log.error({ code: frame.code, reason: frame.message }, 'hub reported an error');
        return;
    }
  }

  private applySync(frame: SyncFrame): void {
    try {
      this.deps.cache.apply(frame); // committed (fsync) before the ack below
    } catch (err) {
      this.deps.log.error({ err }, 'could not commit sync batch; reconnecting to get it again');
      this.ws?.terminate();
      return;
    }
    this.send({ type: 'ack', revision: frame.revision });
    this.deps.onDesiredChanged(frame.keys !== undefined);
  }

  private flushOutbox(): void {
    if (!this.linkState.connected || this.inflightSeq !== undefined || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const items = this.deps.outbox.batch(Math.min(this.options.reportBatch ?? 200, MAX_REPORT_ITEMS));
    if (items.length === 0) return;
    this.inflightSeq = Math.max(...items.map((i) => i.seq));
    this.send({ type: 'report', items });
  }

  private send(frame: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private touch(): void {
    clearTimeout(this.deadlineTimer);
    const ws = this.ws;
    this.deadlineTimer = setTimeout(() => {
      this.deps.log.warn({ deadlineMs: this.readDeadlineMs }, 'nothing heard from the hub within the read deadline; reconnecting');
      ws?.terminate();
    }, this.readDeadlineMs);
    this.deadlineTimer.unref();
  }

  private protocolError(message: string): void {
    this.deps.log.error({ reason: message }, 'invalid frame from hub; reconnecting');
    this.ws?.terminate();
  }

  private setState(state: LinkState): void {
    this.linkState = state;
    this.deps.onStateChange?.(state);
  }
}
