import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeConfig } from '../../shared/api/index.js';
import { substitute } from '../../shared/api/render.js';
import { workloadOf, type AppTemplate } from '../../shared/api/workload.js';
import type { Logger } from '../../shared/logger.js';
import type { ConfigResolver } from '../runtime/workload-runtime.js';
import { syncDirectory, type DirModes } from './config-files.js';
import type { SecretDir } from './secret-dir.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLAIN: DirModes = { dir: 0o755, file: 0o644 };
const SECRET: DirModes = { dir: 0o700, file: 0o600 };

export interface FileConfigResolverDeps {
  /** The agent's cache: EdgeConfigs come out of it with their secrets opened. */
  cache: {
    get<T extends EdgeConfig>(kind: 'EdgeConfig', name: string): T | undefined;
    cachedKeys(): { kind: string; name: string }[];
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

  /** Removes the directories of configs no longer in the cache (their secrets with them), except those running instances still use. */
  prune(inUse: ReadonlySet<string> = new Set()): void {
    const keep = new Set(this.deps.cache.cachedKeys().filter((k) => k.kind === 'EdgeConfig').map((k) => k.name));
    for (const parent of [this.options.plainDir, ...this.options.secretDir.candidates]) {
      let entries: string[];
      try {
        entries = readdirSync(parent);
      } catch {
        continue;
      }
      for (const name of entries) {
        if (keep.has(name) || inUse.has(join(parent, name))) continue;
        try {
          rmSync(join(parent, name), { recursive: true, force: true });
        } catch (err) {
          // Left for the next pass; a reconcile must never fail over a stale directory.
          this.deps.log.warn({ err, dir: join(parent, name) }, 'cannot remove the files of a config no longer on this node');
        }
      }
    }
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
    const dir = join(secret ? this.options.secretDir.ensure() : this.options.plainDir, name);
    // A config that gained or lost secretData moves: no copy stays behind in another place.
    for (const parent of [this.options.plainDir, ...this.options.secretDir.candidates]) {
      const other = join(parent, name);
      if (other !== dir) rmSync(other, { recursive: true, force: true });
    }
    if (syncDirectory(dir, new Map(Object.entries(this.values(config))), secret ? SECRET : PLAIN)) {
      this.deps.log.info({ config: name, dir }, 'config files updated');
    }
    return dir;
  }
}
