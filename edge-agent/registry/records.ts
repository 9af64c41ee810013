// The registry contract lives in shared/registry/records.ts: the hub merges agents' reports
// with the same `supersedes` rule, and cloud-hub may not import edge-agent.
export * from '../../shared/registry/records.js';
