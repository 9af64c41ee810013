import { readFileSync } from 'node:fs';

/**
 * Kills what a timed-out (or abandoned) exec left running in a container: the engine reports the
 * exec's host pid, which leads its own process group (Podman and Docker both start it in a new
 * session). It is killed only when /proc shows it in the container's cgroup: an agent in another
 * pid namespace (or a pid already reused) must never kill a stranger. False when it could not.
 */
export function killExecGroup(pid: number, containerId: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  let cgroup: string;
  try {
    cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return false;
  }
  if (containerId.length < 12 || !cgroup.includes(containerId)) return false;
  try {
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
      return true;
    } catch {
      return false;
    }
  }
}
