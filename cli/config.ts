import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { OutpostError } from '../shared/errors.js';

/** Default data directory of a hub started without --data. */
export function defaultHubDataDir(): string {
  return process.env.OUTPOST_HUB_DATA || join(homedir(), '.outpost', 'hub');
}

/** Where the playground (`npm start`) keeps everything. */
export function playgroundDir(): string {
  return resolve(process.env.OUTPOST_PLAYGROUND_DIR ?? '.outpost');
}

export interface Connection {
  server: string;
  token: string;
  /** Where the values came from, for error messages. */
  source: string;
}

/**
 * Finds the hub and admin token: --server/--token, then OUTPOST_SERVER/OUTPOST_TOKEN, then a hub
 * running on this machine (its hub.json and admin-token file in OUTPOST_HUB_DATA, the
 * playground's ./.outpost/hub, or ~/.outpost/hub).
 */
export function resolveConnection(flags: { server?: string; token?: string }): Connection {
  // Empty values count as unset.
  const server = flags.server || process.env.OUTPOST_SERVER || undefined;
  const token = flags.token || process.env.OUTPOST_TOKEN || undefined;
  if (server && token) return { server, token, source: flags.server ? '--server/--token' : 'OUTPOST_SERVER/OUTPOST_TOKEN' };
  const candidates = [process.env.OUTPOST_HUB_DATA, join(playgroundDir(), 'hub'), join(homedir(), '.outpost', 'hub')].filter((d): d is string => !!d);
  for (const dir of candidates) {
    const infoFile = join(dir, 'hub.json');
    if (!existsSync(infoFile)) continue;
    try {
      const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { url: string; adminTokenFile: string };
      const fileToken = readFileSync(info.adminTokenFile, 'utf8').trim();
      return { server: server ?? info.url, token: token ?? fileToken, source: `local hub (${infoFile})` };
    } catch {
      continue;
    }
  }
  throw new OutpostError(
    'BAD_REQUEST',
    'no hub to talk to: pass --server URL --token TOKEN, set OUTPOST_SERVER and OUTPOST_TOKEN, or run this on the machine of a local hub (npm start)',
  );
}
