import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { normalizeRemoteAddress } from '../core/cidr.js';
import { connectionKey } from '../endpoints/connection-gate.js';

/*
 * Bounds on API connections after authentication. The pre-auth limits let a connection go once
 * its first request carried a valid token; then ~1,000 kept-alive connections with a
 * `consoles:read` token used up the process's 1,024 file descriptors, and the API, SSH and VNC
 * listeners refused everyone, with nothing logged. Now:
 * - one address holds at most `perSource` API connections (counted from the accept);
 * - one token holds at most `perToken` (counted from its first request on a connection; the
 *   request over the cap is answered 429 and its connection closed);
 * - all API connections together stay below half of the file-descriptor limit (and `max`), so
 *   the SSH and VNC listeners and the VMs' sockets always have descriptors left.
 * Each limit, when hit, is counted and logged (at most once a minute per kind).
 */

export type ConnectionRefusal = 'per-source' | 'per-token' | 'total';

export interface ConnectionLimitOptions {
  perSource: number;
  perToken: number;
  /** API connections in all; lowered to half of the descriptor limit when that is less. */
  max: number;
  onRefused?: (reason: ConnectionRefusal, detail: Record<string, unknown>) => void;
}

/** The process's soft limit on open files (Linux: /proc/self/limits), or undefined where it cannot be read. */
export function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line && line[1] !== 'unlimited' ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

export class ConnectionLimits {
  private readonly bySource = new Map<string, number>();
  private readonly byToken = new Map<string, number>();
  /** Which token each connection is charged to, by its TCP address and port (the same on a TLS socket and its TCP socket). */
  private readonly tokenOf = new Map<string, string>();
  readonly max: number;

  constructor(private readonly options: ConnectionLimitOptions) {
    const descriptors = openFileLimit();
    this.max = Math.max(1, Math.min(options.max, descriptors === undefined ? options.max : Math.floor(descriptors / 2)));
  }

  /** Applies the total cap and the per-source cap to `server` (a plain or TLS HTTP server). */
  attach(server: Server): void {
    server.maxConnections = this.max;
    // Node closes connections over maxConnections itself; 'drop' tells of each.
    server.on('drop', (data?: { remoteAddress?: string }) => this.options.onRefused?.('total', { remote: data?.remoteAddress, max: this.max }));
    server.on('connection', (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    const source = normalizeRemoteAddress(socket.remoteAddress);
    const count = this.bySource.get(source) ?? 0;
    if (count >= this.options.perSource) {
      this.options.onRefused?.('per-source', { remote: source, max: this.options.perSource });
      socket.destroy();
      return;
    }
    this.bySource.set(source, count + 1);
    const key = connectionKey(socket);
    socket.once('close', () => {
      const left = (this.bySource.get(source) ?? 1) - 1;
      if (left <= 0) this.bySource.delete(source);
      else this.bySource.set(source, left);
      const token = this.tokenOf.get(key);
      if (token === undefined) return;
      this.tokenOf.delete(key);
      const held = (this.byToken.get(token) ?? 1) - 1;
      if (held <= 0) this.byToken.delete(token);
      else this.byToken.set(token, held);
    });
  }

  /**
   * Charges `socket` to `tokenId` on its first authenticated request. False: the token holds
   * `perToken` connections already (answer 429 and close this one). A connection that changes
   * tokens stays charged to its first.
   */
  charge(socket: { remoteAddress?: string; remotePort?: number }, tokenId: string, tokenName: string): boolean {
    const key = connectionKey(socket);
    if (this.tokenOf.has(key)) return true;
    const held = this.byToken.get(tokenId) ?? 0;
    if (held >= this.options.perToken) {
      this.options.onRefused?.('per-token', { token: tokenName, max: this.options.perToken });
      return false;
    }
    this.byToken.set(tokenId, held + 1);
    this.tokenOf.set(key, tokenId);
    return true;
  }

  get perToken(): number {
    return this.options.perToken;
  }
}
