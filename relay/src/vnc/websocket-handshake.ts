import type { IncomingMessage } from 'node:http';

/** RFC 7230 `tchar`: what a subprotocol name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A Sec-WebSocket-Key: 16 bytes, base64 (RFC 6455 §4.1). */
const KEY = /^[+/0-9A-Za-z]{22}==$/;

export interface HandshakeProblem {
  status: 400 | 405;
  message: string;
  /** Extra response headers: `Allow` for another method, the versions spoken for a bad version. */
  headers?: Record<string, string>;
}

/**
 * What is wrong with a WebSocket opening handshake, checked before its token is redeemed, so
 * that a malformed handshake neither uses up the token nor opens the VM's screen. The same
 * rules as ws's `handleUpgrade` (which would refuse it afterwards).
 */
export function handshakeProblem(request: IncomingMessage): HandshakeProblem | undefined {
  if (request.method !== 'GET') return { status: 405, message: 'a WebSocket opening handshake is a GET request', headers: { Allow: 'GET' } };
  const upgrade = request.headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return { status: 400, message: 'the Upgrade header must be "websocket"' };
  const key = request.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return { status: 400, message: 'missing or malformed Sec-WebSocket-Key (16 bytes, base64)' };
  const version = request.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return { status: 400, message: 'unsupported Sec-WebSocket-Version: this relay speaks 13', headers: { 'Sec-WebSocket-Version': '13, 8' } };
  const protocols = request.headers['sec-websocket-protocol'];
  if (protocols !== undefined && !validProtocolList(protocols)) return { status: 400, message: 'malformed Sec-WebSocket-Protocol: a comma-separated list of distinct names' };
  return undefined;
}

/** Sec-WebSocket-Protocol as ws parses it: names separated by commas, white space only after a name or a comma, none repeated. */
function validProtocolList(header: string): boolean {
  const names = new Set<string>();
  let name = '';
  let ended = false;
  for (let i = 0; i < header.length; i++) {
    const char = header[i]!;
    if (!ended && TOKEN.test(char)) name += char;
    else if (i !== 0 && (char === ' ' || char === '\t')) ended = name !== '';
    else if (char === ',') {
      if (name === '' || names.has(name)) return false;
      names.add(name);
      name = '';
      ended = false;
    } else return false;
  }
  return name !== '' && !ended && !names.has(name);
}
