/**
 * The preload: a minimal, validated surface on `window.lifelinePreload`. It imports only the
 * contract and Electron's contextBridge/ipcRenderer.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { IPC, type DesktopEvent, type PreloadApi, type StreamMessage } from './contract.js';

const api: PreloadApi = {
  call: (method, args) => ipcRenderer.invoke(IPC.call, String(method), Array.isArray(args) ? args : []),
  onEvent(listener) {
    const handler = (_event: unknown, payload: DesktopEvent): void => listener(payload);
    ipcRenderer.on(IPC.event, handler);
    return () => ipcRenderer.removeListener(IPC.event, handler);
  },
  openStream(streamId, onMessage) {
    return new Promise((resolve, reject) => {
      const onPort = (event: Electron.IpcRendererEvent, payload: { streamId: string; error?: string }): void => {
        if (payload.streamId !== streamId) return;
        ipcRenderer.removeListener(IPC.stream, onPort);
        const port = event.ports[0];
        if (!port || payload.error) return reject(new Error(payload.error ?? 'no stream'));
        port.onmessage = (message) => onMessage(message.data as StreamMessage);
        port.start();
        resolve({ send: (message) => port.postMessage(message), close: () => port.close() });
      };
      ipcRenderer.on(IPC.stream, onPort);
      ipcRenderer.send(IPC.openStream, String(streamId));
    });
  },
};

contextBridge.exposeInMainWorld('lifelinePreload', api);
