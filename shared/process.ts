/**
 * kill(target, 0): whether a process (pid > 0) or process group (negative pid) exists. EPERM
 * means it exists but belongs to someone else. A zombie counts as existing here; callers that
 * must tell zombies apart read /proc (edge-agent/runtime/proc-stat.ts).
 */
export function processExists(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
