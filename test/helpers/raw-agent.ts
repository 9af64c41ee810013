// A bare protocol client: speaks the agent wire protocol frame by frame, so tests can send
// exactly what a buggy or hostile agent would.
import WebSocket from 'ws';
import type { HubFrame } from '../../shared/protocol/frames.js';
import { waitFor } from './wait.js';

export interface RawAgent {
  ws: WebSocket;
  frames: HubFrame[];
  closed: { code: number; reason: string } | undefined;
  send(frame: unknown): void;
  hello(extra?: Record<string, unknown>): void;
  next<T extends HubFrame>(pred: (f: HubFrame) => f is T, timeoutMs?: number): Promise<T>;
  waitClosed(timeoutMs?: number): Promise<{ code: number; reason: string }>;
}

export async function connectRaw(hubUrl: string, credential: string): Promise<RawAgent> {
  const ws = new WebSocket(`${hubUrl.replace(/^http/, 'ws')}/agent/v1/connect`, { headers: { Authorization: `Bearer ${credential}` } });
  const agent: RawAgent = {
    ws,
    frames: [],
    closed: undefined,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    hello: (extra = {}) => agent.send({ type: 'hello', protocol: 1, appliedRevision: 0, agentVersion: 'test', cached: [], ...extra }),
    async next(pred, timeoutMs = 5000) {
      let seen = 0;
      return waitFor(() => {
        for (; seen < agent.frames.length; seen++) {
          const f = agent.frames[seen];
          if (f && pred(f)) return f;
        }
        return undefined;
      }, { timeoutMs, message: 'hub frame' });
    },
    waitClosed: (timeoutMs = 5000) => waitFor(() => agent.closed, { timeoutMs, message: 'session close' }),
  };
  ws.on('message', (d) => agent.frames.push(JSON.parse(d.toString()) as HubFrame));
  ws.on('close', (code, reason) => { agent.closed = { code, reason: reason.toString() }; });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return agent;
}
