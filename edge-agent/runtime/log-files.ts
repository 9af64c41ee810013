import { copyFileSync, existsSync, mkdirSync, openSync, renameSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';

/** The log files of one instance: `<dir>/current.log` and rotated `current.log.1` (newest) .. `.N`. */
export class InstanceLogFiles {
  readonly dir: string;
  readonly current: string;

  constructor(
    dir: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    this.dir = dir;
    this.current = join(dir, 'current.log');
  }

  /**
   * Opens the current log for a child's stdout and stderr. 'a' is O_WRONLY|O_CREAT|O_APPEND: every
   * write of the child lands at the end of the file, wherever it is after a truncation.
   * The caller closes its copy of the descriptor once the child has it.
   */
  openAppend(): number {
    mkdirSync(this.dir, { recursive: true });
    return openSync(this.current, 'a', 0o640);
  }

  /** Path of the n-th rotated file (1 = newest). */
  rotated(n: number): string {
    return `${this.current}.${n}`;
  }

  /**
   * Rotates when the current file is larger than the cap; returns whether it did.
   *
   * Copy-then-truncate, because the child keeps writing through its own descriptor and cannot be
   * told to reopen the file: renaming would leave it writing to the rotated file. Caveat: lines
   * the child writes between the copy and the truncation are lost. The window is one file copy.
   */
  rotateIfNeeded(): boolean {
    let size: number;
    try {
      size = statSync(this.current).size;
    } catch {
      return false;
    }
    if (size <= this.maxBytes) return false;
    if (this.keep > 0) {
      for (let n = this.keep - 1; n >= 1; n--) {
        if (existsSync(this.rotated(n))) renameSync(this.rotated(n), this.rotated(n + 1));
      }
      copyFileSync(this.current, this.rotated(1));
    }
    truncateSync(this.current, 0);
    return true;
  }
}
