import { connect } from 'node:net';
import { FramedSocket, RELAY_PROTOCOL } from '../shared/tunnel/framed-socket.js';
import type { ReadSlabs } from '../shared/tunnel/read-slabs.js';
import { framedRefusalError, notFramedError } from './tunnel-refusal.js';

/** Largest HTTP answer head (or refusal body) read before the upgrade. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * The `outpost-stream` upgrade over plain TCP, written and read here rather than by node:http:
 * that way the socket reads into `slabs` (net's onread) from the first byte, which node:http's
 * response parser cannot read from. A refusal (any status but 101) rejects with the hub's
 * OutpostError from its JSON body. `headers` must not contain CR or LF. The FramedSocket starts
 * paused: resume() it once its listeners are on.
 */
export function upgradeOverTcp(url: URL, headers: Record<string, string>, slabs: ReadSlabs, timeoutMs: number): Promise<FramedSocket> {
  return new Promise((resolve, reject) => {
    let framed: FramedSocket | undefined;
    let answer = Buffer.alloc(0);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const socket = connect({
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(url.port || 80),
      onread: {
        buffer: () => slabs.next(),
        // true: keep reading (a paused FramedSocket stops the socket itself).
        callback: (n: number) => {
          const piece = slabs.take(n);
          if (framed) framed.feed(piece);
          else onAnswer(piece);
          return true;
        },
      },
    });
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs);
    socket.once('error', fail);
    socket.once('end', () => fail(new Error('the hub closed the connection before answering')));
    socket.once('connect', () => {
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'Connection: Upgrade', `Upgrade: ${RELAY_PROTOCOL}`];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });

    const onAnswer = (piece: Buffer) => {
      answer = Buffer.concat([answer, piece]);
      const end = answer.indexOf('\r\n\r\n');
      if (end < 0) {
        if (answer.length > MAX_ANSWER_BYTES) fail(new Error('the hub\'s answer head is too large'));
        return;
      }
      const [statusLine = '', ...headerLines] = answer.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      const answerHeaders = new Map(headerLines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const rest = answer.subarray(end + 4);
      if (status === 101) {
        if ((answerHeaders.get('upgrade') ?? '').toLowerCase() !== RELAY_PROTOCOL) {
          fail(notFramedError(answerHeaders.get('upgrade')));
          return;
        }
        settled = true;
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.removeAllListeners('end');
        framed = new FramedSocket(socket, { head: Buffer.from(rest), onread: slabs, paused: true });
        resolve(framed);
        return;
      }
      const length = Number(answerHeaders.get('content-length') ?? -1);
      const refuse = (body: Buffer) => fail(framedRefusalError(status, body));
      if (length >= 0 && rest.length >= length) refuse(rest.subarray(0, length));
      else if (answer.length > MAX_ANSWER_BYTES) refuse(Buffer.alloc(0));
      else {
        socket.removeAllListeners('end');
        socket.once('end', () => refuse(rest));
      }
    };
  });
}
