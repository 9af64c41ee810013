import type { AnyObject } from '../../shared/api/index.js';
import { matchesRequirements } from '../../shared/labels.js';
import type { ListOptions } from './store.js';

/** Whether an object passes a list's label and field selectors (the store's and the cache's lists). */
export function matchesListOptions(obj: AnyObject, options: ListOptions): boolean {
  if (options.labelSelector && !matchesRequirements(obj.metadata.labels, options.labelSelector)) return false;
  return Object.entries(options.fieldSelector ?? {}).every(([path, want]) => fieldValue(obj, path) === want);
}

/** The value at a dotted path as a string; a missing field reads as '' (as in Kubernetes). */
export function fieldValue(obj: AnyObject, path: string): string | undefined {
  let v: unknown = obj;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v === undefined ? '' : undefined;
    v = (v as Record<string, unknown>)[key];
  }
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? undefined : String(v as string | number | boolean);
}
