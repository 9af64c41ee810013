import { statSync } from 'node:fs';

/** Where the agent looks for a container engine when not told: Podman's system service, then Docker's. */
export const DEFAULT_ENGINE_SOCKETS = ['/run/podman/podman.sock', '/var/run/docker.sock'];

/** Either the socket to use, or why this node has no container runtime (for the instances' status). */
export type EngineSocketChoice = { socket: string } | { socket: null; reason: string };

/**
 * Picks the engine socket: `configured` (the --container-socket flag, else OUTPOST_CONTAINER_SOCKET)
 * when given, `none` to run no containers, else the first default that is a socket.
 */
export function chooseEngineSocket(configured: string | undefined, candidates: string[] = DEFAULT_ENGINE_SOCKETS): EngineSocketChoice {
  const given = configured?.trim();
  if (given === 'none') return { socket: null, reason: 'container runtime disabled on this node (--container-socket none)' };
  if (given) {
    if (isSocket(given)) return { socket: given };
    return { socket: null, reason: `no Docker or Podman socket at ${given} (--container-socket / OUTPOST_CONTAINER_SOCKET); start the engine (e.g. systemctl enable --now podman.socket) and restart the agent` };
  }
  const found = candidates.find(isSocket);
  if (found) return { socket: found };
  return { socket: null, reason: `no Docker or Podman socket on this node (looked at ${candidates.join(', ')}); start one (e.g. systemctl enable --now podman.socket) or pass --container-socket PATH, then restart the agent` };
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
