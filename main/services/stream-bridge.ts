import type { Duplex } from 'node:stream';
import { STREAM_WINDOW_BYTES, type StreamMessage } from '../../preload/contract.js';

/**
 * Main's end of one tab's message pipe, whatever carries it: Electron's MessagePortMain, a
 * browser-mode WebSocket, or a worker_threads MessagePort in tests (VS Code's IChannel idea:
 * one protocol, any transport).
 */
export interface MessageEndpoint {
  send(message: StreamMessage): void;
  onMessage(listener: (message: unknown) => void): void;
  /** The other side went away (closed its port, the page reloaded, the socket dropped). */
  onClose(listener: () => void): void;
  close(): void;
}

function isAck(message: unknown): message is { type: 'ack'; bytes: number } {
  const m = message as { type?: unknown; bytes?: unknown } | null;
  return m?.type === 'ack' && Number.isSafeInteger(m.bytes) && (m.bytes as number) > 0;
}

function isData(message: unknown): message is { type: 'data'; data: Uint8Array } {
  const m = message as { type?: unknown; data?: unknown } | null;
  return m?.type === 'data' && m.data instanceof Uint8Array;
}

/**
 * Carries a console's bytes (an SSH channel) over `port` with credit-based flow control: output
 * flows at once (no ack is needed for the first bytes), and main stops reading the channel while
 * more than `windowBytes` are unacknowledged, so a slow renderer stops the relay, not main's memory.
 * Input from the renderer is written to the channel. The channel closing closes the port with a
 * `close` message; the renderer closing its side detaches and leaves the channel paused (the tab
 * may attach again). Returns a detach function; idempotent.
 */
export function bridgeStream(stream: Duplex, port: MessageEndpoint, windowBytes = STREAM_WINDOW_BYTES): () => void {
  let unacknowledged = 0;
  let detached = false;
  const onData = (chunk: Buffer): void => {
    // A copy of just this chunk: transports that structured-clone would otherwise copy the whole pooled slab.
    port.send({ type: 'data', data: new Uint8Array(chunk) });
    unacknowledged += chunk.length;
    if (unacknowledged > windowBytes) stream.pause();
  };
  const onStreamClose = (): void => {
    if (detached) return;
    detach();
    port.send({ type: 'close', reason: 'console closed' });
    port.close();
  };
  const detach = (): void => {
    if (detached) return;
    detached = true;
    stream.off('data', onData);
    stream.off('close', onStreamClose);
    stream.pause();
  };
  port.onMessage((message) => {
    if (detached) return;
    if (isAck(message)) {
      unacknowledged = Math.max(0, unacknowledged - message.bytes);
      if (unacknowledged <= windowBytes) stream.resume();
    } else if (isData(message)) {
      if (stream.writable) stream.write(Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
    } else if ((message as { type?: unknown } | null)?.type === 'close') {
      detach();
      port.close();
    }
  });
  port.onClose(detach);
  if (stream.destroyed || stream.readableEnded) {
    onStreamClose();
    return detach;
  }
  stream.on('data', onData);
  stream.once('close', onStreamClose);
  // Output flows from the start: the renderer acknowledges what it has consumed, it never has to ask first.
  stream.resume();
  return detach;
}
