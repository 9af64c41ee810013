import type { TunnelConnection } from './tunnel-connection.js';
import { OutpostError } from '../shared/errors.js';
import { parseDuration } from '../shared/duration.js';

/** How long a tunnel socket may go without hearing from the hub (a pong or any message). */
export const DEFAULT_TUNNEL_DEADLINE_MS = 30_000;

/**
 * The read deadline of the CLI's tunnel sockets: OUTPOST_TUNNEL_DEADLINE (a duration such as
 * `30s`, at least 100ms), else 30 s. A bad value is an error naming the variable.
 */
export function tunnelDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.OUTPOST_TUNNEL_DEADLINE;
  if (!text) return DEFAULT_TUNNEL_DEADLINE_MS;
  const ms = parseDuration(text, 'OUTPOST_TUNNEL_DEADLINE');
  if (ms < 100) throw new OutpostError('BAD_REQUEST', `OUTPOST_TUNNEL_DEADLINE: "${text}" is too short (at least 100ms)`);
  return ms;
}

/**
 * Pings the hub every third of `deadlineMs`; when nothing (pong or message) came for `deadlineMs`
 * the socket gets an 'error' ("lost the hub: no answer for 30s") and is terminated, so a hub that
 * vanished without closing (SIGSTOP, a blackholed link) ends the command instead of hanging it.
 * While the socket is paused (our own output is full) we read nothing, so the deadline waits too.
 */
export function keepTunnelAlive(ws: TunnelConnection, deadlineMs: number): void {
  let heard = Date.now();
  const hear = () => { heard = Date.now(); };
  ws.on('pong', hear);
  ws.on('data', hear);
  ws.on('control', hear);
  ws.on('ping', hear);
  const timer = setInterval(() => {
    if (!ws.open) return;
    if (ws.isPaused) return hear();
    if (Date.now() - heard >= deadlineMs) {
      clearInterval(timer);
      ws.emit('error', new OutpostError('UNAVAILABLE', `lost the hub: no answer for ${formatSeconds(deadlineMs)}`));
      ws.terminate();
      return;
    }
    ws.ping();
  }, Math.max(50, Math.floor(deadlineMs / 3)));
  timer.unref();
  ws.once('close', () => clearInterval(timer));
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
}
