import type { Duplex } from 'node:stream';

// The protocol level of an MQTT connection is byte 8 to 12 of its first packet (CONNECT: fixed
// header, remaining length (1-4 bytes), protocol name ("MQTT" or "MQIsdp"), level). The broker reads
// that much before it decides where the connection goes: MQTT 5 to the adapter, anything else
// straight to aedes, which then refuses what it does not speak.

/** Enough bytes for a CONNECT's fixed header, a 4-byte length, a 6-byte protocol name and the level. */
const HEAD_MAX = 14;

/** The protocol level of a CONNECT that starts with `head`; undefined = need more bytes; null = not a CONNECT this can read. */
export function protocolLevel(head: Buffer): number | undefined | null {
  if (head.length === 0) return undefined;
  if (head[0] !== 0x10) return null;
  let pos = 1;
  for (;;) {
    const b = head[pos];
    if (b === undefined) return undefined;
    pos++;
    if ((b & 0x80) === 0) break;
    if (pos > 4) return null;
  }
  if (head.length < pos + 2) return undefined;
  const nameLength = head.readUInt16BE(pos);
  if (nameLength !== 4 && nameLength !== 6) return null;
  const levelAt = pos + 2 + nameLength;
  return levelAt < head.length ? head[levelAt]! : undefined;
}

export interface SniffResult {
  /** The CONNECT's protocol level (4 = 3.1.1, 5 = MQTT 5), or null when the first bytes are not a CONNECT. */
  level: number | null;
  /** Every byte read so far: give it back to the stream (`unshift`) or to the next parser. */
  head: Buffer;
}

/**
 * Reads the start of `stream` until the protocol level is known, then pauses it. Rejects (and
 * destroys the stream) when it ends or errs first, or when nothing decisive arrived within `timeoutMs`.
 */
export function sniffProtocolLevel(stream: Duplex, timeoutMs: number): Promise<SniffResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (err: Error | undefined, result?: SniffResult) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      if (err) {
        stream.on('error', () => {}); // late errors of a stream given up on
        stream.destroy();
        return reject(err);
      }
      // Whoever takes the stream next adds its own error listener, one microtask later.
      stream.on('error', () => {});
      stream.pause();
      resolve(result!);
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      chunks.push(buf);
      length += buf.length;
      const head = chunks.length === 1 ? buf : Buffer.concat(chunks, length);
      const level = protocolLevel(head.subarray(0, HEAD_MAX));
      if (level !== undefined) finish(undefined, { level, head });
      else if (length >= HEAD_MAX) finish(undefined, { level: null, head });
    };
    const onEnd = () => finish(new Error('connection closed before CONNECT'));
    const onError = (err: Error) => finish(err);
    const timer = setTimeout(() => finish(new Error(`no CONNECT within ${timeoutMs} ms`)), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
  });
}
