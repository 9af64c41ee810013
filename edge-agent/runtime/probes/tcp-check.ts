import { connect } from 'node:net';
import type { Probe } from '../../../shared/api/workload.js';
import { hostPort, type Check, type CheckOutcome } from './check.js';

/** Success: a TCP connection is established; it is closed at once. */
export function tcpCheck(tcp: NonNullable<Probe['tcpSocket']>, defaultHost: string): Check {
  const host = tcp.host ?? defaultHost;
  const label = `connect ${hostPort(host, tcp.port)}`;
  const run = (signal: AbortSignal): Promise<CheckOutcome> =>
    new Promise((resolve, reject) => {
      const socket = connect({ host, port: tcp.port });
      const onAbort = () => socket.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve({ ok: true, message: `${label}: connected` });
      });
      socket.on('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      });
    });
  return { label, run };
}
