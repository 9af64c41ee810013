import { join } from 'node:path';
import { FileConfigResolver, type FileConfigResolverDeps } from './config-resolver.js';
import { loadOrCreateNodeKey } from './node-key.js';
import { SecretCodec } from './secret-codec.js';
import { SecretDir } from './secret-dir.js';

/** The cache codec that seals EdgeConfig secrets with this node's key (`<data>/config.key`). */
export function nodeSecretCodec(dataDir: string): SecretCodec {
  return new SecretCodec(loadOrCreateNodeKey(dataDir));
}

/** The agent's ConfigResolver: plain configs under `<data>/configs`, secret ones on tmpfs when there is one. */
export function nodeConfigResolver(deps: FileConfigResolverDeps, options: { node: string; unit: string; dataDir: string }): FileConfigResolver {
  const secretDir = new SecretDir(options.dataDir);
  if (!secretDir.tmpfs) deps.log.warn({ dir: secretDir.fallback }, 'no tmpfs at /dev/shm: files of secret configs will be written to disk (mode 0600)');
  return new FileConfigResolver(
    { ...deps, log: deps.log.child({ component: 'configs' }) },
    { node: options.node, unit: options.unit, plainDir: join(options.dataDir, 'configs'), secretDir },
  );
}
