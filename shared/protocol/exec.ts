import { OutpostError } from '../errors.js';

/**
 * Exec over a tunnel stream (kind 'exec', issue 8).
 *
 * OPEN params: ExecParams (command, tty, stdin, cols, rows).
 * Data, client -> agent: the command's stdin, raw bytes (only with params.stdin). The client's END
 *   (the CLI relay's {type:'end'}) closes it; with a tty the user types ^D instead.
 * Data, agent -> client: output frames, so that stdout and stderr stay apart on one byte stream:
 *   byte 0 channel (1 stdout, 2 stderr), bytes 1..4 payload length (uint32 BE), then the payload.
 *   With a tty there is only channel 1 (the terminal merges both, as on any terminal).
 * CONTROL client -> agent: {type:'resize', cols, rows} (tty only; ignored otherwise).
 * CONTROL agent -> client: {type:'exit', code, signal?} after the last output frame, then END.
 *   code is the command's exit code, or 128 + signal number when a signal ended it.
 */
export const ExecChannel = { STDOUT: 1, STDERR: 2 } as const;
export type ExecChannel = (typeof ExecChannel)[keyof typeof ExecChannel];

export const EXEC_FRAME_HEADER_BYTES = 5;
/** Largest output payload in one frame; the agent splits larger chunks. */
export const MAX_EXEC_FRAME_BYTES = 64 * 1024;
/** Bounds of a command line: argument count and total bytes. */
export const MAX_EXEC_ARGS = 1024;
export const MAX_EXEC_COMMAND_BYTES = 64 * 1024;
/** Terminal sizes outside 1..MAX_TERMINAL_SIZE are refused. */
export const MAX_TERMINAL_SIZE = 10_000;

export interface ExecParams {
  /** argv: command and arguments, run without a shell. */
  command: string[];
  /** Run in a pseudo-terminal (stdout and stderr merged, raw input, resize). */
  tty: boolean;
  /** Whether the client sends stdin; without it the command's stdin is at end of file at once. */
  stdin: boolean;
  /** Initial terminal size (tty only); default 80x24. */
  cols: number;
  rows: number;
}

export interface ExecExit {
  type: 'exit';
  code: number;
  signal?: string;
}

/** Validates OPEN params of an exec stream. Throws BAD_REQUEST naming the field. */
export function parseExecParams(params: Record<string, unknown>): ExecParams {
  const { command, tty, stdin, cols, rows } = params;
  if (!Array.isArray(command) || command.length === 0) throw new OutpostError('BAD_REQUEST', 'params.command must be a non-empty array of strings (the command and its arguments)');
  if (command.length > MAX_EXEC_ARGS) throw new OutpostError('BAD_REQUEST', `params.command has ${command.length} arguments; at most ${MAX_EXEC_ARGS}`);
  let bytes = 0;
  for (const [i, arg] of command.entries()) {
    if (typeof arg !== 'string') throw new OutpostError('BAD_REQUEST', `params.command[${i}] must be a string`);
    if (arg.includes('\0')) throw new OutpostError('BAD_REQUEST', `params.command[${i}] contains a NUL byte`);
    bytes += Buffer.byteLength(arg);
  }
  if (command[0] === '') throw new OutpostError('BAD_REQUEST', 'params.command[0] (the command) must not be empty');
  if (bytes > MAX_EXEC_COMMAND_BYTES) throw new OutpostError('BAD_REQUEST', `params.command is ${bytes} bytes; at most ${MAX_EXEC_COMMAND_BYTES}`);
  for (const [name, v] of [['tty', tty], ['stdin', stdin]] as const) {
    if (v !== undefined && typeof v !== 'boolean') throw new OutpostError('BAD_REQUEST', `params.${name} must be true or false`);
  }
  return {
    command: command as string[],
    tty: tty === true,
    stdin: stdin === true,
    cols: terminalSize(cols, 'params.cols', 80),
    rows: terminalSize(rows, 'params.rows', 24),
  };
}

/** Validates a resize control; throws BAD_REQUEST naming the field. */
export function parseResize(msg: Record<string, unknown>): { cols: number; rows: number } {
  return { cols: terminalSize(msg.cols, 'cols', undefined), rows: terminalSize(msg.rows, 'rows', undefined) };
}

function terminalSize(v: unknown, field: string, fallback: number | undefined): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_TERMINAL_SIZE) throw new OutpostError('BAD_REQUEST', `${field} must be an integer 1-${MAX_TERMINAL_SIZE}`);
  return v as number;
}

/** Output frames for `data` on `channel`, split at MAX_EXEC_FRAME_BYTES. */
export function encodeExecOutput(channel: ExecChannel, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += MAX_EXEC_FRAME_BYTES) {
    const part = data.subarray(i, i + MAX_EXEC_FRAME_BYTES);
    const frame = Buffer.allocUnsafe(EXEC_FRAME_HEADER_BYTES + part.length);
    frame[0] = channel;
    frame.writeUInt32BE(part.length, 1);
    frame.set(part, EXEC_FRAME_HEADER_BYTES);
    out.push(frame);
  }
  return out;
}

/**
 * Splits the agent's output byte stream back into (channel, payload); bytes arrive in arbitrary
 * chunks. A bad channel or an oversized length is a PROTOCOL error (the stream is broken).
 */
export class ExecOutputDecoder {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onOutput: (channel: ExecChannel, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    while (this.pending.length - offset >= EXEC_FRAME_HEADER_BYTES) {
      const channel = this.pending[offset];
      const size = this.pending.readUInt32BE(offset + 1);
      if (channel !== ExecChannel.STDOUT && channel !== ExecChannel.STDERR) throw new OutpostError('PROTOCOL', `exec output frame on unknown channel ${channel}`);
      if (size > MAX_EXEC_FRAME_BYTES) throw new OutpostError('PROTOCOL', `exec output frame of ${size} bytes exceeds ${MAX_EXEC_FRAME_BYTES}`);
      if (this.pending.length - offset - EXEC_FRAME_HEADER_BYTES < size) break;
      this.onOutput(channel, this.pending.subarray(offset + EXEC_FRAME_HEADER_BYTES, offset + EXEC_FRAME_HEADER_BYTES + size));
      offset += EXEC_FRAME_HEADER_BYTES + size;
    }
    if (offset > 0) this.pending = this.pending.subarray(offset);
  }

  /** Bytes of an incomplete frame still held (non-zero at the end of the stream: output was cut). */
  get buffered(): number {
    return this.pending.length;
  }
}

/** Exit code of a command ended by a signal, as shells report it. */
export function signalExitCode(signalNumber: number): number {
  return 128 + signalNumber;
}
