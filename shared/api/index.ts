export * from './meta.js';
export * from './kinds.js';
export * from './validate.js';
export type { NodeUnit } from './node-unit.js';
export type { EdgeNode, EdgeNodeStatus, NodePhase } from './edge-node.js';
export type { EdgeApp, EdgeAppSpec, EdgeAppStatus, ProcessTemplate, RestartPolicy, UnitAppStatus } from './edge-app.js';
export type { Instance, InstancePhase, InstanceSpec, InstanceStatus } from './instance.js';
