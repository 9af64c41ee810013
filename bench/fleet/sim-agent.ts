import Database from 'better-sqlite3';
import type { AnyObject, Instance } from '../../shared/api/index.js';
import type { Logger } from '../../shared/logger.js';
import type { SyncFrame } from '../../shared/protocol/frames.js';
import { DesiredCache } from '../../edge-agent/cache/desired-cache.js';
import { Outbox } from '../../edge-agent/cache/outbox.js';
import { HubLink, type LinkState } from '../../edge-agent/link/hub-link.js';

/** What a simulated agent tells its fleet. Times are epoch ms (compared across processes). */
export interface SimAgentEvents {
  /** A sync batch was committed to the agent's cache (before its ack was sent). */
  onCommitted(agent: SimAgent, frame: SyncFrame, at: number): void;
  onLinkState(agent: SimAgent, state: LinkState): void;
  /** A sync batch carrying the full key list (a resync) was committed. */
  onResynced(agent: SimAgent, at: number): void;
}

/** A DesiredCache that tells the fleet about each committed batch. */
class ObservedCache extends DesiredCache {
  constructor(db: Database.Database, private readonly committed: (frame: SyncFrame) => void) {
    super(db);
  }

  override apply(frame: SyncFrame): void {
    super.apply(frame);
    this.committed(frame);
  }
}

/**
 * One simulated edge agent: the agent's own HubLink, DesiredCache and Outbox on a private
 * in-memory SQLite database, without runtime, broker or registry. Like the real agent it puts its
 * node status in the outbox once per session and reports every instance placed on it as Running.
 */
export class SimAgent {
  readonly link: HubLink;
  private readonly db: Database.Database;
  private readonly outbox: Outbox;
  connected = false;
  disconnects = 0;
  /** Why each established session ended (the link's lastError), for the fleet's stats. */
  readonly disconnectReasons: string[] = [];
  sessions = 0;

  constructor(readonly name: string, credential: string, hubUrl: string, log: Logger, private readonly events: SimAgentEvents) {
    this.db = new Database(':memory:');
    this.db.pragma('synchronous = OFF');
    const cache = new ObservedCache(this.db, (frame) => this.committed(frame));
    this.outbox = new Outbox(this.db);
    this.link = new HubLink(
      {
        cache, outbox: this.outbox, log,
        onDesiredChanged: (full) => { if (full) this.events.onResynced(this, Date.now()); },
        onStateChange: (state) => this.stateChanged(state),
      },
      { hubUrl, credential },
    );
  }

  start(): void {
    this.link.start();
  }

  async stop(): Promise<void> {
    await this.link.stop();
    this.db.close();
  }

  private stateChanged(state: LinkState): void {
    if (state.connected) {
      this.sessions++;
      this.outbox.put('node-status', { instances: {}, outboxDepth: this.outbox.depth(), droppedEvents: 0 }, 'node');
    } else if (this.connected) {
      this.disconnects++;
      if (this.disconnectReasons.length < 20) this.disconnectReasons.push(state.lastError ?? 'unknown');
    }
    this.connected = state.connected;
    this.events.onLinkState(this, state);
  }

  private committed(frame: SyncFrame): void {
    const at = Date.now();
    for (const o of frame.objects as AnyObject[]) {
      if (o.kind !== 'Instance') continue;
      const inst = o as Instance;
      if (inst.spec.node !== this.name) continue;
      this.outbox.put('instance-status', {
        name: inst.metadata.name,
        status: { phase: 'Running', ready: true, restarts: 0, node: this.name, templateHash: inst.spec.templateHash, startedAt: new Date(at).toISOString() },
      }, `instance/${inst.metadata.name}`);
    }
    this.events.onCommitted(this, frame, at);
  }
}
