import type { EdgeNode, NodeUnit } from '../../shared/api/index.js';

/** One agent's latest peer health vote, as the hub received it. */
export interface PeerVote {
  unreachable: ReadonlySet<string>;
  reachable: ReadonlySet<string>;
  /** Hub time the vote arrived, ms. */
  at: number;
}

export interface PeerVotesOptions {
  /** A vote older than this is not counted, ms. Agents re-send every 10 s. Default 45 000. */
  freshMs?: number;
}

/**
 * Peer health votes (README "Replication and failure detection"): which unit peers each agent can
 * reach. Kept in memory: after a hub restart every connected agent votes again within its
 * re-send period, and until then no vote counts.
 */
export class PeerVotes {
  private readonly votes = new Map<string, PeerVote>();
  readonly freshMs: number;

  constructor(private readonly now: () => number, options: PeerVotesOptions = {}) {
    this.freshMs = options.freshMs ?? 45_000;
  }

  record(voter: string, body: { reachable: readonly string[]; unreachable: readonly string[] }): void {
    this.votes.set(voter, { reachable: new Set(body.reachable), unreachable: new Set(body.unreachable), at: this.now() });
  }

  forget(voter: string): void {
    this.votes.delete(voter);
  }

  /** The voter's vote if it is fresh. */
  fresh(voter: string): PeerVote | undefined {
    const v = this.votes.get(voter);
    return v && this.now() - v.at <= this.freshMs ? v : undefined;
  }
}

/**
 * The peerHealth rule: with the unit's `autonomy.peerHealth`, a Disconnected node is Down when a
 * strict majority of the unit's other connected nodes have a fresh vote saying they cannot reach
 * it. A connected node without a fresh vote counts against (it has not said the node is gone).
 * No connected peer, no verdict: a silent unit is never declared Down by vote. With
 * `disconnectedSinceMs` (hub time), only votes that arrived after the node disconnected count: a
 * vote about an earlier absence (before the node came back and dropped again) is no evidence.
 * Returns the reason, or undefined.
 */
export function peerVoteVerdict(
  node: EdgeNode,
  unit: NodeUnit | undefined,
  unitNodes: readonly EdgeNode[],
  isConnected: (node: string) => boolean,
  votes: Pick<PeerVotes, 'fresh'>,
  disconnectedSinceMs?: number,
): string | undefined {
  if (unit?.spec?.autonomy?.peerHealth !== true) return undefined;
  const name = node.metadata.name;
  const connected = unitNodes.filter((n) => n.metadata.name !== name && n.spec.unit === node.spec.unit && isConnected(n.metadata.name));
  if (connected.length === 0) return undefined;
  const against = connected.filter((n) => {
    const vote = votes.fresh(n.metadata.name);
    return vote?.unreachable.has(name) === true && (disconnectedSinceMs === undefined || vote.at >= disconnectedSinceMs);
  }).map((n) => n.metadata.name);
  if (against.length * 2 <= connected.length) return undefined;
  return `${against.length} of ${connected.length} connected peers of unit ${node.spec.unit} cannot reach it (${against.sort().join(', ')})`;
}
