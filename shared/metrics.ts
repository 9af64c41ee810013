import { collectDefaultMetrics, Registry } from 'prom-client';

/** A fresh registry per process (never prom-client's global one), with the default process metrics. */
export function createRegistry(prefix: string, labels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: `${prefix}_` });
  return registry;
}
