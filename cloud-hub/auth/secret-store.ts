import type { CreateTokenOptions, JoinTokenInfo, NodeIdentity } from './hub-secrets.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * Join tokens and node credentials, hashes only. Implementations: HubSecrets (the hub's private
 * SQLite file, synchronous) and KubeSecrets (Kubernetes Secrets in the hub namespace, shared by
 * every replica). Callers await every method except `authenticateNode`, which is on the agent
 * connect path and answers from memory in both (KubeSecrets keeps a watched index).
 */
export interface HubSecretStore {
  createJoinToken(options: CreateTokenOptions): MaybePromise<{ token: string; info: JoinTokenInfo }>;
  listJoinTokens(): MaybePromise<JoinTokenInfo[]>;
  deleteJoinToken(id: string): MaybePromise<boolean>;
  /** Throws TOKEN_INVALID / TOKEN_EXPIRED / TOKEN_USED_UP. */
  checkJoinToken(token: string): MaybePromise<{ id: string; unit: string; labels: Record<string, string> }>;
  /** Consumes one use and issues the node's credential; NODE_EXISTS when the node has one. */
  joinNode(token: string, node: string): MaybePromise<{ credential: string; unit: string }>;
  authenticateNode(credential: string): NodeIdentity | undefined;
  hasNode(node: string): MaybePromise<boolean>;
  revokeNode(node: string): MaybePromise<void>;
  close(): MaybePromise<void>;
}
