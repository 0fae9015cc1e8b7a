import type { DesktopBridge, DesktopEvent } from '../../preload/contract.js';
import { apiProxy } from './api-proxy.js';
import { CreditedStream, webSocketPort } from './credited-stream.js';

/** Browser mode: the desktop contract over a WebSocket to the page's own origin. */
export async function connectBrowserBridge(): Promise<DesktopBridge> {
  const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
  const socket = new WebSocket(`${base}/rpc`);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error('cannot reach the Lifeline service')), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  const listeners = new Set<(event: DesktopEvent) => void>();
  socket.addEventListener('message', (message) => {
    const data = JSON.parse(String(message.data)) as { id?: number; result?: unknown; error?: { message: string }; event?: DesktopEvent };
    if (data.event) {
      for (const listener of listeners) listener(data.event);
      return;
    }
    const call = data.id !== undefined ? pending.get(data.id) : undefined;
    if (!call) return;
    pending.delete(data.id!);
    if (data.error) call.reject(new Error(data.error.message));
    else call.resolve(data.result);
  });
  socket.addEventListener('close', () => {
    for (const call of pending.values()) call.reject(new Error('the connection to the Lifeline service closed'));
    pending.clear();
  });
  const api = apiProxy(
    (method, args) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        socket.send(JSON.stringify({ id, method, args }));
      }),
  );
  return {
    api,
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    openStream: async (streamId) => new CreditedStream(webSocketPort(`${base}/streams/${encodeURIComponent(streamId)}`)),
  };
}
