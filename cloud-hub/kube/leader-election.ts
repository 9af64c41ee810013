import type { Clock, Timer } from '../../shared/clock.js';
import { OutpostError, isOutpostError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

/** The fields of a coordination.k8s.io/v1 Lease spec the election uses; times in ms since the epoch. */
export interface LeaseRecord {
  /** '' when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: number;
  renewTime?: number;
  leaseTransitions: number;
}

/** The Lease as read, with its resourceVersion (the optimistic-concurrency precondition of the next write). */
export interface ObservedLease {
  record: LeaseRecord;
  resourceVersion: string;
}

/**
 * The seam to the API server: one Lease object. Implementations: the coordination API
 * (lease-client.ts) and an in-memory one for tests. Writes that lose a race throw OutpostError
 * ALREADY_EXISTS (create of an existing Lease) or CONFLICT (update with a stale resourceVersion).
 */
export interface LeaseClient {
  get(): Promise<ObservedLease | undefined>;
  create(record: LeaseRecord): Promise<ObservedLease>;
  update(record: LeaseRecord, resourceVersion: string): Promise<ObservedLease>;
}

export interface LeaderElectionOptions {
  /** This replica's identity, written as holderIdentity (default in hub.ts: hostname-pid). */
  identity: string;
  /** How long a follower waits after it last saw the Lease change before taking it, ms. Default 12 000. */
  leaseDurationMs?: number;
  /** A leader that has not renewed for this long stops its leader-only work, ms. Default 8 000. */
  renewDeadlineMs?: number;
  /** Period of acquire and renew attempts, ms. Default 2 000. */
  retryPeriodMs?: number;
}

export interface LeaderElectionDeps {
  client: LeaseClient;
  clock: Clock;
  log: Logger;
  /** Called when this replica becomes leader. Must not throw. */
  onStartedLeading(): void;
  /**
   * Called at once when leadership is lost or given up. Must not throw. On stop() the Lease is
   * released only after the returned promise settles (leader-only work has stopped).
   */
  onStoppedLeading(): void | Promise<void>;
  /** Called when the observed holder changes ('' when released). */
  onLeaderChanged?(identity: string): void;
}

export type ElectionState = 'stopped' | 'follower' | 'leader' | 'stopping';

/**
 * Leader election on one Lease, in the manner of client-go's leaderelection package: every
 * replica tries to acquire or renew every retry period with a resourceVersion precondition, so two
 * writers can never both succeed on the same version. A follower never trusts the remote clock:
 * it takes the Lease only when the record has not changed for leaseDuration by ITS clock since it
 * observed the last change. A leader steps down when it has not renewed for renewDeadline
 * (< leaseDuration), i.e. before any follower can consider the Lease expired, and at once when it
 * sees another holder. On stop it releases the Lease (holder '') so a follower takes it at its
 * next attempt instead of waiting out the duration.
 */
export class LeaderElector {
  private st: ElectionState = 'stopped';
  private observed: ObservedLease | undefined;
  /** Local time at which `observed` was first seen with its resourceVersion. */
  private observedAt = 0;
  /** Local time at which the last successful renew STARTED (conservative). */
  private renewedAt = 0;
  private timer: Timer | undefined;
  private watchdog: Timer | undefined;
  private attempt: Promise<void> | undefined;
  private holder = '';
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;

  constructor(private readonly deps: LeaderElectionDeps, private readonly options: LeaderElectionOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? 12_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 8_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    checkTimings(this.leaseDurationMs, this.renewDeadlineMs, this.retryPeriodMs);
    if (!options.identity || options.identity.length > 128) throw new OutpostError('BAD_REQUEST', 'leader election identity must be 1 to 128 characters');
  }

  get state(): ElectionState {
    return this.st;
  }

  get isLeader(): boolean {
    return this.st === 'leader';
  }

  /** The holder this replica last observed ('' when none). */
  get leader(): string {
    return this.holder;
  }

  get identity(): string {
    return this.options.identity;
  }

  start(): void {
    if (this.st !== 'stopped') return;
    this.st = 'follower';
    this.schedule(0);
  }

  /** Stops campaigning; a leader stops its work first, then releases the Lease (bounded by the client's own timeouts). */
  async stop(): Promise<void> {
    if (this.st === 'stopped' || this.st === 'stopping') return;
    const wasLeader = this.st === 'leader';
    this.st = 'stopping';
    this.clearTimers();
    if (wasLeader) await this.deps.onStoppedLeading();
    await this.attempt?.catch(() => undefined);
    if (wasLeader || this.observed?.record.holderIdentity === this.options.identity) await this.release();
    this.st = 'stopped';
  }

  /** One acquire-or-renew attempt now (tests drive the election with this and the clock). */
  async tick(): Promise<void> {
    if (this.attempt) return this.attempt;
    this.attempt = this.tryAcquireOrRenew().finally(() => { this.attempt = undefined; });
    return this.attempt;
  }

  private schedule(ms: number): void {
    if (this.st !== 'follower' && this.st !== 'leader') return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      void this.tick().finally(() => this.schedule(this.retryPeriodMs));
    }, ms);
    this.timer.unref?.();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    if (this.st !== 'follower' && this.st !== 'leader') return;
    const started = this.deps.clock.now();
    const me = this.options.identity;
    let current: ObservedLease | undefined;
    try {
      current = await this.deps.client.get();
      if (this.st !== 'follower' && this.st !== 'leader') return;
      if (!current) {
        const created = await this.deps.client.create({ holderIdentity: me, leaseDurationSeconds: this.durationSeconds(), acquireTime: started, renewTime: started, leaseTransitions: 0 });
        this.succeeded(created, started);
        return;
      }
      this.observe(current);
      const rec = current.record;
      if (rec.holderIdentity !== '' && rec.holderIdentity !== me && !this.expired(rec)) {
        if (this.st === 'leader') this.lose(`the Lease is held by ${rec.holderIdentity}`);
        return;
      }
      const mine = rec.holderIdentity === me;
      const next: LeaseRecord = {
        holderIdentity: me,
        leaseDurationSeconds: this.durationSeconds(),
        acquireTime: mine && rec.acquireTime !== undefined ? rec.acquireTime : started,
        renewTime: started,
        leaseTransitions: mine ? rec.leaseTransitions : rec.leaseTransitions + 1,
      };
      const updated = await this.deps.client.update(next, current.resourceVersion);
      this.succeeded(updated, started);
    } catch (err) {
      if (isOutpostError(err, 'CONFLICT') || isOutpostError(err, 'ALREADY_EXISTS')) {
        // Someone else wrote the Lease between our read and write: theirs won.
        if (this.st === 'leader') this.lose('another replica wrote the Lease');
        return;
      }
      // Transient (API server unreachable, timeout): a leader keeps leading until the watchdog fires.
      this.deps.log.warn({ err, state: this.st }, 'leader election: Lease request failed; retrying');
    }
  }

  private succeeded(lease: ObservedLease, started: number): void {
    if (this.st !== 'follower' && this.st !== 'leader') return;
    this.observe(lease);
    this.renewedAt = started;
    this.armWatchdog();
    if (this.st === 'follower') {
      this.st = 'leader';
      this.deps.log.info({ identity: this.options.identity, transitions: lease.record.leaseTransitions }, 'became leader');
      this.deps.onStartedLeading();
    }
  }

  private lose(reason: string): void {
    if (this.st !== 'leader') return;
    this.st = 'follower';
    if (this.watchdog) this.deps.clock.clearTimeout(this.watchdog);
    this.watchdog = undefined;
    this.deps.log.warn({ identity: this.options.identity, reason }, 'lost leadership; leader-only work stops');
    void this.deps.onStoppedLeading();
  }

  /** Fires when no renew succeeded for renewDeadline, even while a request still hangs. */
  private armWatchdog(): void {
    if (this.watchdog) this.deps.clock.clearTimeout(this.watchdog);
    const due = this.renewedAt + this.renewDeadlineMs - this.deps.clock.now();
    this.watchdog = this.deps.clock.setTimeout(() => {
      this.watchdog = undefined;
      this.lose(`no successful renew for ${this.renewDeadlineMs} ms`);
    }, Math.max(0, due));
    this.watchdog.unref?.();
  }

  private observe(lease: ObservedLease): void {
    if (this.observed?.resourceVersion !== lease.resourceVersion) {
      this.observed = lease;
      this.observedAt = this.deps.clock.now();
    }
    if (lease.record.holderIdentity !== this.holder) {
      this.holder = lease.record.holderIdentity;
      this.deps.onLeaderChanged?.(this.holder);
    }
  }

  private expired(rec: LeaseRecord): boolean {
    return this.observedAt + rec.leaseDurationSeconds * 1000 <= this.deps.clock.now();
  }

  private durationSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }

  private async release(): Promise<void> {
    const observed = this.observed;
    if (!observed || observed.record.holderIdentity !== this.options.identity) return;
    const now = this.deps.clock.now();
    try {
      const released = await this.deps.client.update({ holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: observed.record.leaseTransitions }, observed.resourceVersion);
      this.observe(released);
      this.deps.log.info({ identity: this.options.identity }, 'released the leader Lease');
    } catch (err) {
      // Another replica took it already, or the API server is gone: it expires on its own.
      this.deps.log.warn({ err }, 'releasing the leader Lease failed; it expires after its duration');
    }
  }

  private clearTimers(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    if (this.watchdog) this.deps.clock.clearTimeout(this.watchdog);
    this.timer = undefined;
    this.watchdog = undefined;
  }
}

/** The invariants that make a split brain impossible without trusting clocks across machines. */
export function checkTimings(leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number): void {
  for (const [name, v] of [['lease duration', leaseDurationMs], ['renew deadline', renewDeadlineMs], ['retry period', retryPeriodMs]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new OutpostError('BAD_REQUEST', `leader election ${name} must be a positive duration, got ${v}`);
  }
  if (renewDeadlineMs >= leaseDurationMs) throw new OutpostError('BAD_REQUEST', `leader election renew deadline (${renewDeadlineMs} ms) must be shorter than the lease duration (${leaseDurationMs} ms)`);
  if (retryPeriodMs >= renewDeadlineMs) throw new OutpostError('BAD_REQUEST', `leader election retry period (${retryPeriodMs} ms) must be shorter than the renew deadline (${renewDeadlineMs} ms)`);
  if (leaseDurationMs % 1000 !== 0) throw new OutpostError('BAD_REQUEST', `leader election lease duration must be whole seconds (leaseDurationSeconds), got ${leaseDurationMs} ms`);
}
