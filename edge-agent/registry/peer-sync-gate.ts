/** One unit peer as the peer layer reports it. */
export interface PeerState {
  status: string;
  linkUp: boolean;
}

export interface PeerSyncGateOptions {
  /** After every peer is linked (or not alive), how long the first digest exchange gets, ms. Default 300. */
  settleMs?: number;
  /** Poll interval, ms. Default 50. */
  pollMs?: number;
  /** Give up waiting after this long, ms. Default 3 000. */
  maxMs?: number;
}

/**
 * Resolves once every known peer has its link up (the replicator exchanges digests at once) or is
 * no longer alive, plus a short settle for that exchange; at the latest after maxMs. A restarted
 * agent holds lookups until then (LocalRegistry.holdLookupsUntil) so that a watcher is not handed
 * a list without the peers' instances.
 */
export function peersSynced(peers: () => readonly PeerState[], options: PeerSyncGateOptions = {}): Promise<void> {
  const settleMs = options.settleMs ?? 300;
  const pollMs = options.pollMs ?? 50;
  const deadline = Date.now() + (options.maxMs ?? 3_000);
  return new Promise((resolve) => {
    const check = () => {
      let linked = false;
      try {
        linked = peers().every((p) => p.linkUp || p.status !== 'alive');
      } catch {
        linked = true; // the peer layer cannot tell: do not hold lookups on it
      }
      if (linked) return void setTimeout(resolve, settleMs).unref();
      if (Date.now() >= deadline) return resolve();
      setTimeout(check, pollMs).unref();
    };
    check();
  });
}
