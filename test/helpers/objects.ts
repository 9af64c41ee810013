// Builders of valid resource objects for tests. Each returns a fresh object that passes
// validateObject; pass options to vary it, or spread and override the result for invalid cases.
import { API_VERSION, type EdgeApp, type EdgeNode, type Instance, type NodeUnit, type ProcessTemplate } from '../../shared/api/index.js';
import { shortHash } from '../../shared/hash.js';

/** Metadata options every builder takes. */
export interface MetaOptions {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function meta(name: string, options: MetaOptions) {
  return {
    name,
    ...(options.labels && { labels: { ...options.labels } }),
    ...(options.annotations && { annotations: { ...options.annotations } }),
  };
}

export interface NodeUnitOptions extends MetaOptions {
  description?: string;
}

export function nodeUnit(name: string, options: NodeUnitOptions = {}): NodeUnit {
  return {
    apiVersion: API_VERSION,
    kind: 'NodeUnit',
    metadata: meta(name, options),
    spec: { description: options.description ?? `unit ${name}` },
  };
}

export interface EdgeAppOptions extends MetaOptions {
  /** Default `{ command: 'sleep', args: ['60'] }`. */
  template?: ProcessTemplate;
  /** Unit names; default `['site-a']`. */
  units?: string[];
  /** NodeUnit label selector, in addition to `units`. */
  unitSelector?: Record<string, string>;
  /** Default 1. */
  replicasPerUnit?: number;
}

export function edgeApp(name: string, options: EdgeAppOptions = {}): EdgeApp {
  return {
    apiVersion: API_VERSION,
    kind: 'EdgeApp',
    metadata: meta(name, options),
    spec: {
      template: options.template ? structuredClone(options.template) : { command: 'sleep', args: ['60'] },
      units: {
        names: [...(options.units ?? ['site-a'])],
        ...(options.unitSelector && { selector: { matchLabels: { ...options.unitSelector } } }),
      },
      replicasPerUnit: options.replicasPerUnit ?? 1,
    },
  };
}

export interface EdgeNodeOptions extends MetaOptions {
  /** The NodeUnit the node joined; default 'site-a'. */
  unit?: string;
}

export function edgeNode(name: string, options: EdgeNodeOptions = {}): EdgeNode {
  const unit = options.unit ?? 'site-a';
  return {
    apiVersion: API_VERSION,
    kind: 'EdgeNode',
    metadata: meta(name, { ...options, labels: { 'outpost.dev/unit': unit, ...options.labels } }),
    spec: { unit },
  };
}

export interface InstanceOptions extends MetaOptions {
  app?: string;
  unit?: string;
  /** '' (unscheduled) by default. */
  node?: string;
  index?: number;
  template?: ProcessTemplate;
}

export function instance(name: string, options: InstanceOptions = {}): Instance {
  const template = options.template ? structuredClone(options.template) : { command: 'sleep', args: ['60'] };
  return {
    apiVersion: API_VERSION,
    kind: 'Instance',
    metadata: meta(name, options),
    spec: {
      app: options.app ?? 'app-a',
      unit: options.unit ?? 'site-a',
      node: options.node ?? '',
      index: options.index ?? 0,
      template,
      templateHash: shortHash(template),
    },
  };
}
