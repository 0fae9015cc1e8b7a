import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export interface RawResponse {
  contentType?: string;
  body?: string;
  headers?: Record<string, string>;
  /** Destroy the socket this long after the answer if the peer keeps it open (over TLS the answer must flush first). */
  destroyAfterMs?: number;
}

/**
 * The one place Lifeline writes an HTTP answer straight onto a socket, where no HTTP server
 * answers: a refused WebSocket upgrade, malformed HTTP, plain HTTP on a TLS port. Always
 * `Connection: close`, and the connection ends after it (destroyed when it can no longer be written).
 */
export function endWithHttpResponse(socket: Duplex, status: number, response: RawResponse = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = response.body ?? '';
  const headers: Record<string, string> = {
    ...(response.contentType && { 'Content-Type': response.contentType }),
    'Content-Length': String(Buffer.byteLength(body)),
    ...response.headers,
    Connection: 'close',
  };
  // end(), not write() then destroy(): over TLS the answer must be flushed before the connection goes.
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}`);
  if (response.destroyAfterMs !== undefined) setTimeout(() => socket.destroy(), response.destroyAfterMs).unref();
}
