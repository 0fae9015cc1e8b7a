import type { Duplex } from 'node:stream';
import { endWithHttpResponse } from '../http/raw-response.js';

/** Answers an upgrade (or a malformed request) with a plain HTTP error, so a refused client never reaches the VM. */
export function refuseUpgrade(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): undefined {
  endWithHttpResponse(socket, status, { contentType: 'text/plain; charset=utf-8', body: `${message}\n`, headers });
  return undefined;
}

/**
 * Whether a browser's WebSocket may open the console: same origin as the page (the scheme and
 * Host the browser used), or one the config lists (`vnc.allowedOrigins`, stored lower-case).
 * Scheme and host are case-insensitive.
 */
export function originAllowed(origin: string, host: string | undefined, secure: boolean, allowed: readonly string[]): boolean {
  const given = origin.toLowerCase();
  if (allowed.includes(given)) return true;
  return host !== undefined && given === `${secure ? 'https' : 'http'}://${host.toLowerCase()}`;
}
