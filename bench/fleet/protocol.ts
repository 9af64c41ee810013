/** Messages between a bench scenario (parent) and its fleet processes (children), over IPC. */

export interface FleetNode {
  name: string;
  /** Join token of the node's unit (used when `credential` is absent). */
  token?: string;
  credential?: string;
  /** This agent's hub URL or comma-separated replica list (default: the request's `hubUrl`). */
  hubUrl?: string;
}

/** Watch for one object version: the time each agent commits `kind/name` at `generation` or later. */
export interface WatchSpec {
  kind: string;
  name: string;
  generation: number;
}

export type FleetRequest =
  | { type: 'join'; hubUrl: string; nodes: FleetNode[]; concurrency: number }
  | { type: 'start'; hubUrl: string; nodes: FleetNode[]; ratePerSecond: number }
  /** Joins each node at `ratePerSecond` (not waiting for the previous one) and starts its agent at once. */
  | { type: 'join-start'; hubUrl: string; nodes: FleetNode[]; ratePerSecond: number }
  | { type: 'watch'; watch: WatchSpec }
  | { type: 'watch-result'; watch: WatchSpec }
  | { type: 'mark' }
  | { type: 'stats' }
  | { type: 'stop' };

/** Counts of one fleet process. `sinceMark` is reset by a `mark` request. */
export interface FleetStats {
  agents: number;
  connected: number;
  disconnects: number;
  /** Why established sessions ended (the agent link's last error, digits as N), counted. */
  disconnectReasons: Record<string, number>;
  sessions: number;
  /** Agents whose link holds a refusal or error as its last state and is not connected. */
  lastErrors: Record<string, number>;
  rssBytes: number;
  sinceMark: { at: number; resynced: number; resyncTimes: number[]; connectTimes: number[] };
}

export interface JoinResult {
  credentials: Record<string, string>;
  failures: { name: string; error: string }[];
  joinMs: number[];
}

export interface WatchResult {
  /** Epoch ms per agent that committed it. */
  times: number[];
  missing: string[];
}

export type FleetReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
