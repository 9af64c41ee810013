import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { OutpostError } from '../shared/errors.js';
import { processExists } from '../shared/process.js';

/** When this process started, in whole seconds since the epoch. */
function processStartedAt(): number {
  return Math.round(Date.now() / 1000 - process.uptime());
}

/**
 * One hub per data directory: two hubs writing one SQLite store would each believe it owns the
 * revision counter. The lock file holds the owner's pid; a lock whose owner is gone is taken over.
 */
export function lockDataDir(path: string): { release(): void } {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid} ${processStartedAt()}`);
      closeSync(fd);
      return { release: () => rmSync(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [pidText, startedText] = readFileSync(path, 'utf8').trim().split(' ');
      const owner = Number(pidText);
      // Our own pid is a live owner only if it is this very process (same start time): in a
      // container the hub is pid 1 after every restart, and that old lock is stale.
      const ownPid = owner === process.pid;
      const sameProcess = ownPid && Math.abs(Number(startedText) - processStartedAt()) <= 2;
      if (Number.isInteger(owner) && owner > 0 && (ownPid ? sameProcess : processExists(owner))) {
        throw new OutpostError('CONFLICT', `another hub (pid ${owner}) is using this data directory (${path}); stop it or use another --data`);
      }
      rmSync(path, { force: true }); // stale: its owner died without cleaning up
    }
  }
  throw new OutpostError('CONFLICT', `cannot lock ${path}`);
}
