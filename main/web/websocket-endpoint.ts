import type { WebSocket } from 'ws';
import type { StreamMessage } from '../../preload/contract.js';
import type { MessageEndpoint } from '../services/stream-bridge.js';

/**
 * The stream protocol over a browser-mode WebSocket: binary frames are console bytes (both ways),
 * text frames are control messages (`{"type":"ack","bytes":n}`, `{"type":"close"}` from the page).
 * Main's `close` is the WebSocket close frame with its reason.
 */
export function webSocketEndpoint(ws: WebSocket): MessageEndpoint {
  return {
    send(message: StreamMessage) {
      if (ws.readyState !== ws.OPEN) return;
      if (message.type === 'data') ws.send(message.data, { binary: true });
      else if (message.type === 'close') ws.close(1000, message.reason.slice(0, 120));
    },
    onMessage(listener) {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) return listener({ type: 'data', data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
        try {
          listener(JSON.parse(data.toString('utf8')) as unknown);
        } catch {
          // Not a control message: ignored, as the bridge ignores anything it does not know.
        }
      });
    },
    onClose: (listener) => void ws.once('close', listener),
    close: () => ws.close(1000, 'console closed'),
  };
}
