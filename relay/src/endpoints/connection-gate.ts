import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { DropReason, StartupLimiter } from '../core/preauth-limits.js';
import { endWithHttpResponse, type RawResponse } from '../http/raw-response.js';
import type { PreauthMetrics } from '../metrics/relay-metrics.js';
import { splitPlaintext } from '../tls/tls-material.js';
import { guardPreauth, type PreauthGuard } from './preauth-guard.js';

/** A connection's TCP address and port: the same on the raw socket and on a TLS socket over it. */
export function connectionKey(socket: { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
}

export interface ConnectionGateOptions {
  /** MaxStartups and PerSourceMaxStartups for connections not yet in. */
  startups: StartupLimiter;
  /** A connection must be in (authenticated, or upgraded) within this from its TCP accept. */
  graceMs: number;
  metrics?: PreauthMetrics;
  onDropped?: (source: string, reason: DropReason) => void;
  /** TLS before anything else; plain text on the port gets `plaintext` and is closed. */
  tls?: { context: SecureContext; plaintext: RawResponse; onError?: (error: Error) => void };
  /** How long a TLS handshake may take. */
  tlsHandshakeMs?: number;
  /**
   * Another server makes the TLS sockets (the API's: Node's HTTPS server), so the way back from one
   * is the TCP connection's address and port. Off for SSH and VNC: no work per connection for it.
   */
  tlsByOtherServer?: boolean;
}

/**
 * The one way into the relay for the SSH, VNC and API listeners: admission at the TCP accept
 * (MaxStartups, refused at once when full), the grace time until the connection is in, the TLS
 * split (a TLS handshake, or a plain-text answer), and the way back from whatever socket a
 * server hands its code — the TCP socket, or a TLS socket over it, made here or by Node's own
 * TLS server — to the connection's pre-auth state.
 */
export class ConnectionGate {
  private readonly guards = new WeakMap<object, PreauthGuard>();
  /** With `tlsByOtherServer`: the guards by the TCP connection's address and port. */
  private readonly byConnection = new Map<string, PreauthGuard>();
  private readonly handshaking = new Set<TLSSocket>();

  constructor(private readonly options: ConnectionGateOptions) {}

  get secure(): boolean {
    return this.options.tls !== undefined;
  }

  /** Admits a new TCP connection and starts its grace timer. Undefined: refused (the socket is destroyed). */
  admit(socket: Socket): PreauthGuard | undefined {
    const guard = guardPreauth(socket, { startups: this.options.startups, graceMs: this.options.graceMs, metrics: this.options.metrics, onDropped: this.options.onDropped });
    if (!guard) return undefined;
    this.guards.set(socket, guard);
    if (this.options.tlsByOtherServer) {
      const key = connectionKey(socket);
      this.byConnection.set(key, guard);
      socket.once('close', () => {
        if (this.byConnection.get(key) === guard) this.byConnection.delete(key);
      });
    }
    return guard;
  }

  /** The pre-auth state of a connection, by its TCP socket or a TLS socket over it. */
  guardOf(socket: object | undefined): PreauthGuard | undefined {
    if (!socket) return undefined;
    return this.guards.get(socket) ?? (this.options.tlsByOtherServer ? this.byConnection.get(connectionKey(socket as Socket)) : undefined);
  }

  /** The connection is in: it leaves the pre-auth limits. */
  passed(socket: object | undefined): void {
    this.guardOf(socket)?.passed();
  }

  /**
   * TLS in front of `ready` when the gate has it: a client that completes the handshake reaches
   * `ready` with its TLS socket; one that sends plain text is answered and closed; one that does
   * neither (a port scan) is closed at the handshake deadline. Without TLS, `ready` gets the socket.
   */
  open(socket: Socket, ready: (socket: Socket) => void): void {
    const tls = this.options.tls;
    if (!tls) return ready(socket);
    splitPlaintext(
      socket,
      () => this.handshake(socket, tls, ready),
      () => endWithHttpResponse(socket, 400, tls.plaintext),
    );
  }

  private handshake(socket: Socket, tls: NonNullable<ConnectionGateOptions['tls']>, ready: (socket: Socket) => void): void {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: tls.context, ALPNProtocols: ['http/1.1'] });
    this.handshaking.add(secure);
    const timer = setTimeout(() => secure.destroy(), this.options.tlsHandshakeMs ?? 10_000);
    secure.on('error', (error: Error) => {
      tls.onError?.(error);
      secure.destroy();
    });
    secure.once('close', () => {
      clearTimeout(timer);
      this.handshaking.delete(secure);
    });
    secure.once('secure', () => {
      clearTimeout(timer);
      this.handshaking.delete(secure);
      const guard = this.guards.get(socket);
      if (guard) this.guards.set(secure, guard);
      ready(secure);
    });
  }

  /** Ends TLS handshakes still in progress. */
  close(): void {
    for (const socket of this.handshaking) socket.destroy();
  }
}
