/** One unit peer as the peer layer reports it. */
export interface PeerState {
  status: string;
  linkUp: boolean;
  /** A first digest exchange over the link has completed: the peer's records are here. */
  synced?: boolean;
}

export interface PeerSyncGateOptions {
  /** After every peer is synced (or not alive), a short settle, ms. Default 50. Peers that do not report `synced` get 300 after their link is up. */
  settleMs?: number;
  /** Poll interval, ms. Default 50. */
  pollMs?: number;
  /** Give up waiting after this long, ms. Default 5 000. */
  maxMs?: number;
}

/**
 * Resolves once every known peer has completed a first digest exchange (or, without that signal,
 * has its link up) or is no longer alive, plus a short settle; at the latest after maxMs. A restarted
 * agent holds lookups until then (LocalRegistry.holdLookupsUntil) so that a watcher is not handed
 * a list without the peers' instances.
 */
export function peersSynced(peers: () => readonly PeerState[], options: PeerSyncGateOptions = {}): Promise<void> {
  let settleMs = options.settleMs ?? 50;
  const pollMs = options.pollMs ?? 50;
  const deadline = Date.now() + (options.maxMs ?? 5_000);
  return new Promise((resolve) => {
    const check = () => {
      let linked = false;
      try {
        const list = peers();
        linked = list.every((p) => (p.synced ?? p.linkUp) || p.status !== 'alive');
        if (list.some((p) => p.synced === undefined)) settleMs = Math.max(settleMs, options.settleMs ?? 300);
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
