import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** Reads bytes [from, to) of a file; empty when it does not exist. */
export function readRange(path: string, from: number, to: number): Buffer {
  if (to <= from) return Buffer.alloc(0);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const buf = Buffer.allocUnsafe(to - from);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

export function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

export function mtimeMs(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Offset in `buf` where its last `lines` lines start (a trailing newline ends the last line). */
export function lastLinesOffset(buf: Buffer, lines: number): number {
  if (lines <= 0) return buf.length;
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  let count = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (buf[i] === 0x0a && ++count === lines) return i + 1;
  }
  return 0;
}
