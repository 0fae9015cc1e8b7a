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
/** The payload of a chunked body (as far as it arrived). */
function dechunk(raw: string): string {
  let body = '';
  let rest = raw;
  for (;;) {
    const line = rest.indexOf('\r\n');
    const size = line < 0 ? NaN : Number.parseInt(rest.slice(0, line), 16);
    if (!Number.isFinite(size) || size === 0) return body;
    body += rest.slice(line + 2, line + 2 + size);
    rest = rest.slice(line + 2 + size + 2);
  }
}

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
      const headers = split < 0 ? text : text.slice(0, split);
      const raw = split < 0 ? '' : text.slice(split + 4);
      resolve({ status: match ? Number(match[1]) : 0, headers, body: /\r\ntransfer-encoding: *chunked/i.test(headers) ? dechunk(raw) : raw });
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
