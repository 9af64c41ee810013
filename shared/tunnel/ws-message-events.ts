import type { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';

/**
 * Re-emits a tunnel WebSocket's messages on `to`: binary messages as 'data' (the stream's bytes),
 * text messages as 'control' (the parsed JSON, undefined when it is not JSON).
 */
export function emitWsMessages(ws: WebSocket, to: EventEmitter): void {
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) {
      to.emit('data', data);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      msg = undefined;
    }
    to.emit('control', msg);
  });
}
