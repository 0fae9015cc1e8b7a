import type { ByteStream, DesktopBridge, PreloadApi, StreamMessage } from '../../preload/contract.js';
import { apiProxy } from './api-proxy.js';

/** A WebSocket-shaped stream over the preload's MessagePort, acknowledging what it consumed. */
class PortStream implements ByteStream {
  readyState = 0;
  readonly protocol = 'binary';
  binaryType = 'arraybuffer';
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  private port: { send: (message: StreamMessage) => void; close: () => void } | undefined;

  constructor(preload: PreloadApi, streamId: string) {
    preload
      .openStream(streamId, (message) => {
        if (message.type === 'data') {
          const data = message.data.buffer.slice(message.data.byteOffset, message.data.byteOffset + message.data.byteLength) as ArrayBuffer;
          this.onmessage?.({ data });
          this.port?.send({ type: 'ack', bytes: message.data.byteLength });
        } else if (message.type === 'close') {
          this.finish(message.reason);
        }
      })
      .then(
        (port) => {
          this.port = port;
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
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
    this.port?.send({ type: 'data', data: bytes });
  }

  close(): void {
    this.port?.send({ type: 'close', reason: 'closed' });
    this.port?.close();
    this.finish('closed');
  }
}

/** Electron: the desktop contract over the preload's IPC and MessagePorts. */
export function electronBridge(preload: PreloadApi): DesktopBridge {
  return {
    api: apiProxy((method, args) => preload.call(method, args)),
    onEvent: (listener) => preload.onEvent(listener),
    openStream: async (streamId) => new PortStream(preload, streamId),
  };
}
