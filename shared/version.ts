/** Outpost's version, stamped on agents (EdgeNode.status.agentVersion) and printed by the CLI. */
export const OUTPOST_VERSION = '0.1.0';
