import { createServer } from 'node:net';

/**
 * A TCP port free on 127.0.0.1 right now, for a process that must be started on a known port
 * (a hub restarted at the same address, a broker given its port on the command line). Another
 * process may take it before it is used: callers bind soon after, and retry where that matters.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = addr && typeof addr !== 'string' ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}
