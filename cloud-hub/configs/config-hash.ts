import type { EdgeConfig } from '../../shared/api/index.js';
import { shortHash } from '../../shared/hash.js';
import type { AppTemplate } from '../../shared/api/workload.js';
import { configNamesOf } from './config-refs.js';

/**
 * A short, stable hash of the data and secretData of the configs a template uses; '' when it
 * uses none. A missing config hashes as absent, so creating it changes the hash. Folded into an
 * instance's templateHash when its app has `restartOnConfigChange`, so a config change rolls the
 * app like a template change.
 */
export function configsHash(template: AppTemplate, configs: (name: string) => EdgeConfig | undefined): string {
  const names = configNamesOf(template);
  if (names.length === 0) return '';
  return shortHash(names.map((n) => {
    const c = configs(n);
    return [n, c ? { d: c.spec.data ?? {}, s: c.spec.secretData ?? {} } : null];
  }));
}
