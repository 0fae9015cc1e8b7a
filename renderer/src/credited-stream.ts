import type { ByteStream, StreamMessage } from '../../preload/contract.js';

/** The renderer's end of a tab's message pipe (Electron's MessagePort via the preload, or a WebSocket). */
export interface RendererPort {
  send(message: StreamMessage): void;
  close(): void;
}

/** Opens a port; `onMessage` receives main's data and close messages. */
export type PortOpener = (onMessage: (message: StreamMessage) => void) => Promise<RendererPort>;

/**
 * A WebSocket-shaped stream (what noVNC and the terminal use) over the one stream protocol of both
 * transports: data both ways, an ack for every chunk consumed (main's credit), a close with a reason.
 */
export class CreditedStream implements ByteStream {
  readyState = 0;
  readonly protocol = 'binary';
  binaryType = 'arraybuffer';
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  private port: RendererPort | undefined;

  constructor(open: PortOpener) {
    open((message) => {
      if (message.type === 'data') {
        const data = message.data.buffer.slice(message.data.byteOffset, message.data.byteOffset + message.data.byteLength) as ArrayBuffer;
        this.onmessage?.({ data });
        this.port?.send({ type: 'ack', bytes: message.data.byteLength });
      } else if (message.type === 'close') {
        this.finish(message.reason);
      }
    }).then(
      (port) => {
        this.port = port;
        if (this.readyState !== 0) return port.close();
        this.readyState = 1;
        this.onopen?.({});
      },
      (error: Error) => {
        this.onerror?.(error);
        this.finish(error.message);
      },
    );
  }

  private finish(reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1000, reason });
  }

  send(data: ArrayBuffer | Uint8Array | string): void {
    if (this.readyState !== 1) return;
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
    this.port?.send({ type: 'data', data: bytes });
  }

  close(): void {
    if (this.readyState === 1) this.port?.send({ type: 'close', reason: 'closed' });
    this.port?.close();
    this.finish('closed');
  }
}

/** Browser mode's port: binary WebSocket frames carry bytes, text frames the control messages. */
export function webSocketPort(url: string): PortOpener {
  return (onMessage) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ['binary']);
      ws.binaryType = 'arraybuffer';
      let open = false;
      ws.onopen = () => {
        open = true;
        resolve({
          send: (message) => {
            if (ws.readyState !== WebSocket.OPEN) return;
            if (message.type === 'data') ws.send(message.data as Uint8Array<ArrayBuffer>);
            else ws.send(JSON.stringify(message));
          },
          close: () => ws.close(),
        });
      };
      ws.onmessage = (event) => {
        if (event.data instanceof ArrayBuffer) onMessage({ type: 'data', data: new Uint8Array(event.data) });
      };
      ws.onclose = (event) => {
        if (!open) reject(new Error('This console is closed.'));
        else onMessage({ type: 'close', reason: event.reason || 'console closed' });
      };
    });
}
