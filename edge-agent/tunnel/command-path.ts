import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** The executable to run, or the exit code and message a shell would give (127 not found, 126 not executable). */
export type CommandLookup = { path: string } | { code: 126 | 127; message: string };

/**
 * Finds `command` as execvp would: a name with a '/' relative to `cwd`, otherwise in each
 * directory of `PATH`. Done before spawning so that a typo gets "command not found" and exit
 * code 127 on every exec path (pipes, pty), not a spawn error or a pty that prints garbage.
 */
export function lookupCommand(command: string, pathVar: string | undefined, cwd: string): CommandLookup {
  if (command.includes('/')) {
    const path = isAbsolute(command) ? command : join(cwd, command);
    return checkExecutable(path, command) ?? { path };
  }
  let denied: CommandLookup | undefined;
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, command);
    const problem = checkExecutable(path, command);
    if (!problem) return { path };
    if (problem.code === 126) denied ??= problem;
  }
  return denied ?? { code: 127, message: `command not found: ${command}` };
}

function checkExecutable(path: string, command: string): { code: 126 | 127; message: string } | undefined {
  try {
    if (statSync(path).isDirectory()) return { code: 126, message: `is a directory: ${command}` };
  } catch {
    return { code: 127, message: `command not found: ${command}` };
  }
  try {
    accessSync(path, constants.X_OK);
    return undefined;
  } catch {
    return { code: 126, message: `permission denied: ${command}` };
  }
}
