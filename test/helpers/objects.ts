// Builders of valid resource objects for tests. Each returns a fresh object that passes
// validateObject; pass options to vary it, or spread and override the result for invalid cases.
import { API_VERSION, type AppTemplate, type EdgeApp, type EdgeNode, type Instance, type NodeUnit, type ProcessSpec, type RestartPolicy } from '../../shared/api/index.js';
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

/** A one-process template in short: the process plus the template-wide settings. */
export type ProcessShorthand = ProcessSpec & { restartPolicy?: RestartPolicy; terminationGracePeriodSeconds?: number };

/** `{ processes: [process] }` with template-wide settings lifted out of the shorthand. */
export function processTemplate(p: ProcessShorthand): AppTemplate {
  const { restartPolicy, terminationGracePeriodSeconds, ...proc } = structuredClone(p);
  return { processes: [proc], ...(restartPolicy && { restartPolicy }), ...(terminationGracePeriodSeconds !== undefined && { terminationGracePeriodSeconds }) };
}

function asTemplate(t: AppTemplate | ProcessShorthand | undefined): AppTemplate {
  if (!t) return { processes: [{ command: 'sleep', args: ['60'] }] };
  return 'command' in t ? processTemplate(t) : structuredClone(t);
}

export interface EdgeAppOptions extends MetaOptions {
  /** A template, or one process in short; default `sleep 60`. */
  template?: AppTemplate | ProcessShorthand;
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
      template: asTemplate(options.template),
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
  template?: AppTemplate | ProcessShorthand;
}

export function instance(name: string, options: InstanceOptions = {}): Instance {
  const template = asTemplate(options.template);
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
