import { closeSync, statSync, writeSync } from 'node:fs';
import { sleep } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/logger.js';
import type { InstanceLogFiles } from '../log-files.js';
import type { DockerEngine } from './docker-engine.js';

/**
 * Copies a container's output into the instance's log file (`<logDir>/<instance>/current.log`,
 * the same layout and rotation as processes), following it until the container stops.
 *
 * Where to start: a new run from the end of the previous run (nothing is copied twice); an
 * adopted container from the time of the file's last write (what the previous agent copied).
 * Lines logged in the instant the previous agent died may be lost or copied twice.
 */
export class ContainerLogPump {
  private abort: AbortController | null = null;
  /** Output is being dropped because the log file cannot be written (a full disk): warned once per episode. */
  private dropping = false;

  constructor(
    private readonly engine: DockerEngine,
    private readonly logs: InstanceLogFiles,
    private readonly log: Logger,
  ) {}

  /** Follows `containerId` from `since` (RFC 3339 or fractional Unix seconds); stops any earlier follow. */
  follow(containerId: string, since: string): void {
    this.stop();
    const abort = new AbortController();
    this.abort = abort;
    void this.run(containerId, since, abort.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
  }

  /** Where an adopted container's copy resumes: the file's last write, or the beginning when there is no file. */
  resumePoint(): string {
    try {
      return unixSeconds(statSync(this.logs.current).mtimeMs);
    } catch {
      return '0';
    }
  }

  /**
   * Runs inside the engine stream's 'data' handler, where a throw would crash the agent: a write
   * that fails (ENOSPC, EIO) drops this output instead (the engine keeps its own copy), warned once
   * until writes succeed again.
   */
  private write(fd: number, data: Buffer, containerId: string): void {
    try {
      writeSync(fd, data);
    } catch (err) {
      if (!this.dropping) this.log.warn({ err, containerId, file: this.logs.current }, 'cannot write the container\'s log file; dropping its output until it can');
      this.dropping = true;
      return;
    }
    if (this.dropping) this.log.info({ containerId }, 'writing the container\'s log file again');
    this.dropping = false;
  }

  /** Never rejects. On an error (the engine restarted, say) it resumes from its last write, every 2 s, until stopped. */
  private async run(containerId: string, since: string, signal: AbortSignal): Promise<void> {
    let from = since;
    for (let attempt = 0; !signal.aborted; attempt++) {
      let fd: number | null = null;
      try {
        fd = this.logs.openAppend();
        const out = fd;
        await this.engine.followLogs(containerId, from, (data) => {
          this.write(out, data, containerId);
          from = unixSeconds(Date.now());
        }, signal);
        return;
      } catch (err) {
        if (signal.aborted) return;
        if (attempt === 0 || attempt % 30 === 0) this.log.warn({ err, containerId }, 'following container logs failed; retrying');
        await sleep(2000, signal).catch(() => undefined);
      } finally {
        if (fd !== null) closeSync(fd);
      }
    }
  }
}

/** Fractional Unix seconds, as the engine's `since` accepts. */
function unixSeconds(ms: number): string {
  return (ms / 1000).toFixed(6);
}
