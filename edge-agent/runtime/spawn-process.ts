import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, statSync } from 'node:fs';
import type { ProcessTemplate } from './types.js';

export interface SpawnRequest {
  template: ProcessTemplate;
  /** Working directory used when the template has none; created if missing. */
  defaultCwd: string;
  /** Opens the log file in append mode; its descriptor becomes the child's stdout and stderr. */
  openLog: () => number;
  baseEnv: Record<string, string>;
  defaultPath: string | undefined;
}

/** A spawn that did not produce a process, with a message for the instance status. */
export class SpawnError extends Error {}

/**
 * The environment of an instance: `baseEnv`, then the template env on top, plus PATH when neither
 * sets it. Nothing else of the agent's environment is passed on.
 */
export function instanceEnv(template: ProcessTemplate, baseEnv: Record<string, string>, defaultPath: string | undefined): Record<string, string> {
  const env: Record<string, string> = { ...baseEnv, ...template.configEnv, ...template.env };
  if (env.PATH === undefined && defaultPath !== undefined) env.PATH = defaultPath;
  return env;
}

/**
 * Starts the process of an instance: detached (its own session and process group, so it outlives
 * the agent and can be signalled as a group), stdin ignored, stdout and stderr straight to the log
 * file, unref'd so that it does not keep the agent's event loop alive.
 *
 * Throws SpawnError for failures known before the spawn. When the child has no pid, the spawn
 * failed (ENOENT, EACCES...) and the child emits 'error' on the next tick: see `describeSpawnError`.
 */
export function spawnInstance(req: SpawnRequest): ChildProcess {
  const { template } = req;
  let cwd = req.defaultCwd;
  if (template.workingDir !== undefined) {
    cwd = template.workingDir;
    if (!isDirectory(cwd)) throw new SpawnError(`working directory not found: ${cwd}`);
  } else {
    mkdirSync(cwd, { recursive: true });
  }
  const fd = req.openLog();
  try {
    const child = spawn(template.command, template.args ?? [], {
      cwd,
      env: instanceEnv(template, req.baseEnv, req.defaultPath),
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    return child;
  } finally {
    // The child has its own copy of the descriptor; the agent must not keep one per start.
    closeSync(fd);
  }
}

/** The status message of a failed spawn. */
export function describeSpawnError(err: unknown, command: string): string {
  if (err instanceof SpawnError) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return `command not found: ${command}`;
    case 'EACCES':
      return `permission denied: ${command}`;
    case 'ENOEXEC':
      return `not an executable: ${command}`;
    case 'EMFILE':
    case 'ENFILE':
      return `cannot start ${command}: too many open files`;
    default:
      return `cannot start ${command}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
