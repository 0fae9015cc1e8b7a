import type { DesktopBridge, PreloadApi } from '../../preload/contract.js';
import { apiProxy } from './api-proxy.js';
import { CreditedStream } from './credited-stream.js';

/** Electron: the desktop contract over the preload's IPC and MessagePorts. */
export function electronBridge(preload: PreloadApi): DesktopBridge {
  return {
    api: apiProxy((method, args) => preload.call(method, args)),
    onEvent: (listener) => preload.onEvent(listener),
    openStream: async (streamId) => new CreditedStream((onMessage) => preload.openStream(streamId, onMessage)),
  };
}
