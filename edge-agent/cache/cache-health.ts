/** The CacheHealthy condition the agent reports on its EdgeNode. */
export interface CacheCondition {
  type: 'CacheHealthy';
  status: 'True' | 'False';
  reason: 'Healthy' | 'Quarantined' | 'RebuiltFromHub';
  message: string;
  lastTransitionTime: string;
}

/**
 * Tracks whether the agent's cache can be trusted. A cache file that was unreadable at start is
 * quarantined (moved aside): the condition is False until the first full resync from the hub
 * has rebuilt it.
 */
export class CacheHealth {
  private condition: CacheCondition;

  constructor(quarantined: { movedTo: string; error: string } | undefined, now: () => number = Date.now) {
    this.now = now;
    this.condition = quarantined
      ? { type: 'CacheHealthy', status: 'False', reason: 'Quarantined', message: `cache was unreadable (${quarantined.error}); moved to ${quarantined.movedTo}; waiting for the hub to rebuild it`, lastTransitionTime: new Date(now()).toISOString() }
      : { type: 'CacheHealthy', status: 'True', reason: 'Healthy', message: 'cache passed its integrity check at start', lastTransitionTime: new Date(now()).toISOString() };
  }

  private readonly now: () => number;

  get current(): CacheCondition {
    return this.condition;
  }

  /** A full resync (with the complete key list) was committed. */
  rebuilt(): void {
    if (this.condition.status === 'True') return;
    this.condition = { type: 'CacheHealthy', status: 'True', reason: 'RebuiltFromHub', message: `${this.condition.message.replace('; waiting for the hub to rebuild it', '')}; rebuilt from the hub`, lastTransitionTime: new Date(this.now()).toISOString() };
  }
}
