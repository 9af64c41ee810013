import { connect, type Socket } from 'node:net';
import { OutpostError } from '../../shared/errors.js';
import type { StreamHandler } from './agent-tunnel.js';
import type { TunnelTargets } from './tunnel-targets.js';

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * port-forward and http streams: one TCP connection per stream to the instance's port (or an
 * allowed address), bytes copied both ways with backpressure, half-close passed on.
 */
export function portForwardHandler(targets: TunnelTargets): StreamHandler {
  return async (open, stream) => {
    const { host, port } = targets.dialAddress(open.target);
    const socket = await dial(host, port);
    // The stream may have been reset (or its session lost) while the agent dialled: nothing
    // would ever close this connection.
    if (stream.destroyed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.on('error', (err) => stream.reset('OUTPOST_UNAVAILABLE', `connection to ${host}:${port} failed: ${err.message}`));
    stream.on('close', () => socket.destroy());
    stream.pipe(socket);
    socket.pipe(stream);
  };
}

function dial(host: string, port: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new OutpostError('UNAVAILABLE', `connecting to ${host}:${port} timed out after ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new OutpostError('UNAVAILABLE', `cannot connect to ${host}:${port} on the node: ${err.code ?? err.message}`));
    });
  });
}
