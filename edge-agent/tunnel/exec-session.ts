import type { ExecChannel } from '../../shared/protocol/exec.js';

/** How an exec'd command ended: `code` as a shell reports it (128 + n for signal n). */
export interface ExecOutcome {
  code: number;
  signal?: string;
}

/** Where the session delivers output; `channel` is stdout or stderr (a tty has stdout only). */
export type ExecOutputSink = (channel: ExecChannel, data: Buffer) => void;

/**
 * A running exec'd command, whatever runs it (a host process with pipes or a pty, a container
 * exec). Output goes to the sink given at start; `pauseOutput`/`resumeOutput` let a slow reader
 * hold the command back instead of the agent buffering without bound.
 */
export interface ExecSession {
  /** Writes to the command's stdin; `done` is called when it may take more. */
  writeStdin(data: Buffer, done: () => void): void;
  /** Closes the command's stdin (end of file). Ignored for a tty (send ^D instead). */
  endStdin(): void;
  /** New terminal size; ignored without a tty. */
  resize(cols: number, rows: number): void;
  pauseOutput(): void;
  resumeOutput(): void;
  /** Ends the command now (the client went away); `exited` still resolves. */
  kill(): void;
  /** Pid of the host process that leads the command's own process group (a container exec's too, as the engine reports it); unset when unknown or it did not start. */
  readonly pid?: number;
  /** Resolves once the command ended and all of its output was given to the sink. Never rejects. */
  readonly exited: Promise<ExecOutcome>;
}
