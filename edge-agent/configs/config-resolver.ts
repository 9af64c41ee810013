import { readdirSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeConfig } from '../../shared/api/index.js';
import { substitute } from '../../shared/api/render.js';
import { configNamesOf, workloadOf, type AppTemplate } from '../../shared/api/workload.js';
import type { Logger } from '../../shared/logger.js';
import type { ConfigResolver } from '../runtime/workload-runtime.js';
import { syncDirectory, type DirModes } from './config-files.js';
import type { SecretDir } from './secret-dir.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLAIN: DirModes = { dir: 0o755, file: 0o644 };
// Readable inside a container whatever user it runs as (a bind mount skips the parents' modes);
// the per-agent parent directory (0700) keeps other users of the node out.
const SECRET: DirModes = { dir: 0o755, file: 0o644 };

export interface FileConfigResolverDeps {
  /** The agent's cache: EdgeConfigs come out of it with their secrets opened. */
  cache: {
    get<T extends EdgeConfig>(kind: 'EdgeConfig', name: string): T | undefined;
    cachedKeys(): { kind: string; name: string }[];
    /** The node's instances: a config they use is kept on disk after it left the cache. */
    instances(): { spec: { template: AppTemplate } }[];
    /** The node's own unit is the one NodeUnit the cache holds. */
    list(kind: 'NodeUnit'): { metadata: { name: string } }[];
  };
  log: Logger;
}

export interface FileConfigResolverOptions {
  node: string;
  /** The unit the node joined; `{{unit}}` follows the NodeUnit in the cache when the node moved since. */
  unit: string;
  /** Parent of the directories of configs without secretData: `<data>/configs`. */
  plainDir: string;
  /** Parent of the directories of configs with secretData (tmpfs when available). */
  secretDir: SecretDir;
}

/**
 * EdgeConfigs from the agent's cache as env (envFrom) and directories (configMounts). A config
 * is one directory on the node, shared by the instances that mount it, with one file per key
 * of data and secretData (secretData wins on a shared key); `{{unit}}` and `{{node}}` in values
 * are substituted. A config with secretData lives wholly under `secretDir` in 0600 files. Every
 * resolve rewrites the files that changed (atomically), so a running process sees a config
 * change in its files; restarting it is the hub's decision (restartOnConfigChange).
 */
export class FileConfigResolver implements ConfigResolver {
  constructor(private readonly deps: FileConfigResolverDeps, private readonly options: FileConfigResolverOptions) {}

  resolve(instance: string, template: AppTemplate): { env: Record<string, string>; dirs: Record<string, string> } {
    const w = workloadOf(template).spec;
    const env: Record<string, string> = {};
    for (const from of w.envFrom ?? []) {
      for (const [key, value] of Object.entries(this.values(this.need(instance, from.config)))) {
        const name = `${from.prefix ?? ''}${key}`;
        // A key like "app.conf" is no variable name: it is left out of env (mount the config to read it).
        if (ENV_NAME.test(name)) env[name] = value;
      }
    }
    const dirs: Record<string, string> = {};
    for (const m of w.configMounts ?? []) dirs[m.config] = this.materialize(this.need(instance, m.config));
    return { env, dirs };
  }

  /**
   * Removes config directories nobody needs: of configs neither in the cache nor used by a cached
   * instance (a config deleted under a running instance keeps its files), and copies left in the
   * other place by a config that gained or lost secretData, unless a running instance still uses
   * them (`inUse`: paths). An empty tmpfs parent goes too.
   */
  prune(inUse: ReadonlySet<string> = new Set()): void {
    const cached = new Map<string, EdgeConfig>();
    for (const k of this.deps.cache.cachedKeys()) {
      if (k.kind !== 'EdgeConfig') continue;
      const c = this.deps.cache.get('EdgeConfig', k.name);
      if (c) cached.set(k.name, c);
    }
    const referenced = new Set(this.deps.cache.instances().flatMap((i) => configNamesOf(i.spec.template)));
    for (const parent of [this.options.plainDir, ...this.options.secretDir.candidates]) {
      let entries: string[];
      try {
        entries = readdirSync(parent);
      } catch {
        continue;
      }
      for (const name of entries) {
        const path = join(parent, name);
        const config = cached.get(name);
        const keep = inUse.has(path) || (config ? this.locationOf(config) === path : referenced.has(name));
        if (keep) continue;
        try {
          rmSync(path, { recursive: true, force: true });
        } catch (err) {
          // Left for the next pass; a reconcile must never fail over a stale directory.
          this.deps.log.warn({ err, dir: path }, 'cannot remove the files of a config no longer on this node');
        }
      }
      if (parent !== this.options.plainDir && entries.length > 0) removeIfEmpty(parent);
    }
  }

  /** Where a config's files are written now. */
  private locationOf(config: EdgeConfig): string {
    const secret = Object.keys(config.spec.secretData ?? {}).length > 0;
    return join(secret ? this.options.secretDir.ensure() : this.options.plainDir, config.metadata.name);
  }

  private need(instance: string, name: string): EdgeConfig {
    const config = this.deps.cache.get('EdgeConfig', name);
    if (!config) throw new Error(`EdgeConfig "${name}" is not on this node (instance ${instance} uses it): create it, or wait for the hub to deliver it`);
    return config;
  }

  private values(config: EdgeConfig): Record<string, string> {
    const vars = { unit: this.deps.cache.list('NodeUnit')[0]?.metadata.name ?? this.options.unit, node: this.options.node };
    return substitute({ ...config.spec.data, ...config.spec.secretData }, vars);
  }

  private materialize(config: EdgeConfig): string {
    const name = config.metadata.name;
    const secret = Object.keys(config.spec.secretData ?? {}).length > 0;
    // A config that gained or lost secretData moves; prune() removes the old copy once no
    // running instance uses it.
    const dir = this.locationOf(config);
    if (syncDirectory(dir, new Map(Object.entries(this.values(config))), secret ? SECRET : PLAIN)) {
      this.deps.log.info({ config: name, dir }, 'config files updated');
    }
    return dir;
  }
}

function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // raced with a new config, or already gone
  }
}
