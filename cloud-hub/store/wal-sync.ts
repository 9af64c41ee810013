import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';

/**
 * Durability of a SQLite WAL database without fsync on the event loop (issue 7).
 *
 * With `synchronous=FULL` every commit fsyncs the WAL inside the (synchronous) better-sqlite3
 * call: the hub's only thread waits for the disk, 3-6 ms on a quiet disk and hundreds of ms when
 * other work loads it, and meanwhile accepts no connection (its listen queue overflows, clients
 * wait out SYN retransmits of 1, 3, 7, 15 s). A connection opened with `synchronous=NORMAL`
 * commits by appending to the WAL without fsync; {@link sync} then fsyncs the WAL file on the
 * libuv thread pool. A caller that acknowledges a write only after `sync()` resolves gives the
 * same guarantee as FULL: fsync flushes the whole file, so every frame committed before the call
 * (this connection's or another's on the same WAL) is on disk. Calls made while an fsync runs
 * share the next one (group commit: one fsync for all commits of that window, however many).
 * SQLite itself still syncs the WAL before a checkpoint and when it reuses the file (NORMAL).
 */
export class WalSync {
  private readonly fd: number;
  private waiting: { resolve(): void; reject(err: unknown): void }[] = [];
  private running = false;
  private closing = false;
  private closed = false;

  /** `dbPath` is the database file; its WAL (`<dbPath>-wal`) must exist (the database is in WAL mode and was written once). */
  constructor(dbPath: string) {
    this.fd = openSync(`${dbPath}-wal`, 'r');
  }

  /** Resolves once every commit made before this call is on disk. */
  sync(): Promise<void> {
    if (this.closing) return Promise.resolve(this.syncNow());
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.start();
    });
  }

  /** fsyncs now, on the calling thread (rare writes, shutdown). */
  syncNow(): void {
    if (!this.closed) fsyncSync(this.fd);
  }

  /** Syncs what is pending (on this thread) and closes the file. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    const waiting = this.waiting;
    this.waiting = [];
    let err: unknown;
    try {
      fsyncSync(this.fd);
    } catch (e) {
      err = e;
    }
    for (const w of waiting) if (err) w.reject(err); else w.resolve();
    // An fsync still on the thread pool closes the file when it returns (the fd must not be reused under it).
    if (!this.running) this.closeFd();
  }

  private closeFd(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private start(): void {
    if (this.running || this.waiting.length === 0) return;
    this.running = true;
    const batch = this.waiting;
    this.waiting = [];
    fsync(this.fd, (err) => {
      this.running = false;
      for (const w of batch) if (err) w.reject(err); else w.resolve();
      if (this.closing) this.closeFd();
      else this.start();
    });
  }
}
