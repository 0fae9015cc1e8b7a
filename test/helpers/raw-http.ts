import { connect } from 'node:net';

export interface RawResponse {
  /** 0 when the server closed (or stayed silent) without an HTTP status line. */
  status: number;
  headers: string;
  body: string;
}

/**
 * Sends bytes exactly as given (no client-side validation, unlike fetch) and reads what comes
 * back until the server closes or `quietMs` passes without data.
 */
/** Whether `text` holds a whole response with a Content-Length (keep-alive servers leave the connection open after it). */
function complete(text: string): boolean {
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, split));
  return length !== null && text.length - split - 4 >= Number(length[1]);
}

export function rawRequest(port: number, bytes: Buffer | string, quietMs = 400, host = '127.0.0.1'): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: match ? Number(match[1]) : 0, headers: split < 0 ? text : text.slice(0, split), body: split < 0 ? '' : text.slice(split + 4) });
    };
    const quiet = (): void => {
      clearTimeout(timer);
      timer = setTimeout(finish, quietMs);
    };
    socket.on('connect', () => {
      socket.write(bytes);
      quiet();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (complete(Buffer.concat(chunks).toString('latin1'))) finish();
      else quiet();
    });
    socket.on('error', () => undefined);
    socket.on('close', finish);
  });
}
