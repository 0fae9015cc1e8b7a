/* eslint-disable max-lines -- over 300 lines until split by connection phase with the one connection gate (issue 19, part 5). */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import type { VirtualMachineRegistry, VncConnection } from '../backends/virtual-machines.js';
import { normalizeRemoteAddress } from '../core/cidr.js';
import { describeDuration } from '../core/duration.js';
import { revocationMessage, revocationReason } from '../core/console-rules.js';
import type { Logger } from '../logger.js';
import type { AdmittedConnection, CloseReason } from '../sessions/live-session.js';
import type { ConsoleLookup, SessionSupervisor } from '../sessions/session-supervisor.js';
import { answerPlaintext, splitPlaintext, TLS_SERVER_POLICY } from '../tls/tls-material.js';
import type { FailureBackoff, StartupLimiter } from '../core/preauth-limits.js';
import type { PreauthMetrics } from '../metrics/relay-metrics.js';
import { guardPreauth, type PreauthGuard } from '../endpoints/preauth-guard.js';
import { VncSession, webSocketClient } from './vnc-session.js';
import type { VncTokenService } from './vnc-tokens.js';
import { serveStaticFile } from '../http/static-files.js';

const ASSETS = fileURLToPath(new URL('../../assets/vnc/', import.meta.url));
const NOVNC = join(dirname(fileURLToPath(import.meta.resolve('@novnc/novnc'))), '..');
const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8' };
/** Where each URL prefix's files come from (noVNC: only its core/ and vendor/ modules). */
const STATIC_ROOTS: ReadonlyArray<readonly [string, string]> = [
  ['/lifeline/', ASSETS],
  ['/novnc/core/', join(NOVNC, 'core')],
  ['/novnc/vendor/', join(NOVNC, 'vendor')],
];
const LIFELINE_ASSETS = new Set(['/lifeline/vnc.js', '/lifeline/vnc.css']);
/** WebSocket close code for "closed by the relay"; the reason text says why. */
export const CLOSE_BY_RELAY = 4000;
const MAX_CLIENT_MESSAGE = 4 * 1024 * 1024;

export interface VncWebServerOptions {
  tokens: VncTokenService;
  virtualMachines: VirtualMachineRegistry;
  supervisor: SessionSupervisor;
  consoles: ConsoleLookup;
  pingIntervalMs: number;
  log: Logger;
  /** Serve `https://` and `wss://` with this certificate (the API's); plain when absent. */
  tls?: { cert: Buffer; key: Buffer };
  /** A WebSocket came with a token that is unknown, used, expired or for another endpoint (metrics). */
  onTokenRefused?: () => void;
  /** A connection must have upgraded to a WebSocket within this, else it is closed. */
  loginGraceTimeMs: number;
  /** MaxStartups and PerSourceMaxStartups for connections not yet upgraded. */
  startups: StartupLimiter;
  /** Delays the refusals of an address that keeps sending bad tokens. */
  failures: FailureBackoff;
  metrics?: PreauthMetrics;
  /** Origins other than the page's own allowed to open the WebSocket (an embedding portal). */
  allowedOrigins?: string[];
}

function securityHeaders(response: ServerResponse): void {
  response.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  response.setHeader('Referrer-Policy', 'no-referrer');
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('Cache-Control', 'no-store');
}

function errorPage(title: string, message: string): string {
  const escape = (text: string): string => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title><link rel="stylesheet" href="/lifeline/vnc.css"></head><body><main class="error"><h1>${escape(title)}</h1><p>${escape(message)}</p></main></body></html>`;
}

function plainError(response: ServerResponse, status: number, message: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' }).end(`${message}\n`);
}

/** Answers an upgrade (or a malformed request) with a plain HTTP error, so a refused client never reaches the VM. */
function refuseUpgrade(socket: Duplex, status: number, text: string, message: string, headers: Record<string, string> = {}): undefined {
  if (!socket.writable) {
    socket.destroy();
    return undefined;
  }
  const body = `${message}\n`;
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`);
  return undefined;
}

/**
 * The WebSocket VNC path on every endpoint (port 6080): `ws://<ip>:6080/?token=…` carries raw
 * RFB in binary frames; the same URL over plain HTTP serves a noVNC page that connects back
 * with the token. Sockets arrive from the endpoint listeners after their source check.
 */
export class VncWebServer {
  private readonly http = createServer((request, response) => this.onRequest(request, response));
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_CLIENT_MESSAGE,
    // noVNC asks for "binary"; websockify clients may ask for nothing. Anything else is answered without a protocol.
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
    // ws checks the opening handshake (method, Upgrade, key, version, protocols) first and only then
    // calls this: so a malformed handshake neither uses up its token nor opens the VM's screen.
    verifyClient: (info: { req: IncomingMessage }, done: (verified: boolean) => void) => this.verify(info.req, done),
  });
  /** The session starter of each upgrade ws is completing (set only while `done(true)` runs). */
  private readonly starting = new Map<IncomingMessage, (ws: WebSocket) => void>();
  private readonly endpointOf = new WeakMap<Socket, string>();
  /** How long a token waits for its WebSocket, as the pages and refusals say it. */
  private readonly ttlText: string;
  private readonly secureContext: SecureContext | undefined;
  /** TLS handshakes in progress, so that close() can end them. */
  private readonly handshaking = new Set<TLSSocket>();
  /** The pre-upgrade state of each connection (plain socket, or its TLS socket). */
  private readonly preauth = new WeakMap<Duplex, PreauthGuard>();

  constructor(private readonly options: VncWebServerOptions) {
    this.ttlText = describeDuration(options.tokens.ttlMs);
    // No TLS 1.2 renegotiation: each one costs the relay a handshake, so a client could loop them (the API allows 3).
    this.secureContext = options.tls && createSecureContext({ ...TLS_SERVER_POLICY, cert: options.tls.cert, key: options.tls.key });
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(request, socket, head));
    // ws's handshake refusals, in the relay's words and format (plain text, Connection: close).
    this.wss.on('wsClientError', (error: Error, socket: Duplex, request: IncomingMessage) => {
      if (request.method !== 'GET') return refuseUpgrade(socket, 405, 'Method Not Allowed', 'a WebSocket opening handshake is a GET request', { Allow: 'GET' });
      const versionHeader: Record<string, string> = /Version/.test(error.message) ? { 'Sec-WebSocket-Version': '13, 8' } : {};
      refuseUpgrade(socket, 400, 'Bad Request', `WebSocket handshake refused: ${error.message}`, versionHeader);
    });
    // Malformed HTTP (a bad request line or header) gets a plain 400, as Node's default does.
    this.http.on('clientError', (_error, socket) => refuseUpgrade(socket, 400, 'Bad Request', 'malformed HTTP request'));
    // No HTTP header or request timeouts here: this server never listens, so Node would never run them.
    // Everything before the upgrade is bounded by vnc.loginGraceTime (the pre-auth guard in handle()).
  }

  /** Whether the port speaks `https://`/`wss://`. */
  get secure(): boolean {
    return this.secureContext !== undefined;
  }

  handle(socket: Socket, endpoint: string): void {
    // Until its WebSocket upgrade, a connection holds a MaxStartups slot and runs against the grace time.
    const guard = guardPreauth(socket, { startups: this.options.startups, graceMs: this.options.loginGraceTimeMs, metrics: this.options.metrics });
    if (!guard) return;
    this.preauth.set(socket, guard);
    if (!this.secureContext) {
      this.endpointOf.set(socket, endpoint);
      this.http.emit('connection', socket);
      return;
    }
    // TLS first: a client that does not complete the handshake (a port scan) never reaches HTTP; plain HTTP is told to use https.
    splitPlaintext(
      socket,
      () => this.handleTls(socket, endpoint),
      () => answerPlaintext(socket, 'text/plain; charset=utf-8', 'This port speaks TLS: open the https:// link the relay gave (wss:// for WebSocket clients).\n'),
    );
  }

  private handleTls(socket: Socket, endpoint: string): void {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: this.secureContext, ALPNProtocols: ['http/1.1'] });
    this.handshaking.add(secure);
    const timer = setTimeout(() => secure.destroy(), 10_000);
    secure.on('error', (error: Error) => {
      this.options.log.debug({ err: error.message }, 'VNC TLS connection failed');
      secure.destroy();
    });
    secure.once('close', () => {
      clearTimeout(timer);
      this.handshaking.delete(secure);
    });
    secure.once('secure', () => {
      clearTimeout(timer);
      this.handshaking.delete(secure);
      this.endpointOf.set(secure, endpoint);
      const state = this.preauth.get(socket);
      if (state) this.preauth.set(secure, state);
      this.http.emit('connection', secure);
    });
  }

  /** A file of the page: our assets under /lifeline/, or noVNC's ES modules (core/ and vendor/ only, .js only). */
  private serveFile(request: IncomingMessage, response: ServerResponse, pathname: string): void {
    for (const [prefix, root] of STATIC_ROOTS) {
      if (pathname.startsWith(prefix) && (prefix === '/lifeline/' ? LIFELINE_ASSETS.has(pathname) : extname(pathname) === '.js')) {
        return serveStaticFile(request, response, root, pathname.slice(prefix.length - 1));
      }
    }
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  }

  /** Untrusted input never reaches a throwing call unguarded: whatever slips through is a plain 400, not a dead relay. */
  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    try {
      this.serveRequest(request, response);
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message }, 'VNC page request failed');
      plainError(response, 400, 'bad request');
    }
  }

  private serveRequest(request: IncomingMessage, response: ServerResponse): void {
    securityHeaders(response);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('only GET\n');
      return;
    }
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://relay');
    } catch {
      return plainError(response, 400, 'malformed request URL');
    }
    if (url.pathname === '/') {
      const endpoint = this.endpointOf.get(request.socket as Socket) ?? '';
      const token = url.searchParams.get('token');
      const send = (status: number, html: string): void => void response.writeHead(status, { 'Content-Type': MIME['.html'] }).end(request.method === 'HEAD' ? undefined : html);
      if (!token) return send(400, errorPage('No console token', 'This address needs a ?token=… from POST /v1/virtualMachines/{vm}/vncTokens.'));
      if (!this.options.tokens.peek(token, endpoint)) {
        // Slowed like a refused WebSocket: the page must not be a faster way to guess tokens.
        const delay = this.options.failures.fail(normalizeRemoteAddress(request.socket.remoteAddress));
        this.options.onTokenRefused?.();
        const expired = (): void => send(403, errorPage('Console link expired', `This console link is invalid, already used, or older than ${this.ttlText}. Ask for a new one.`));
        if (delay > 0) setTimeout(expired, delay).unref();
        else expired();
        return;
      }
      return serveStaticFile(request, response, ASSETS, '/index.html');
    }
    this.serveFile(request, response, url.pathname);
  }

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://relay');
    } catch {
      return refuseUpgrade(socket, 400, 'Bad Request', 'malformed URL');
    }
    if (url.pathname !== '/') return refuseUpgrade(socket, 404, 'Not Found', 'connect to /?token=<token>');
    this.wss.handleUpgrade(request, socket, head, (ws) => this.starting.get(request)?.(ws));
  }

  /** ws's verifyClient: the token, the origin and the console, then the VM's screen; the session starts when ws completes. */
  private verify(request: IncomingMessage, done: (verified: boolean) => void): void {
    const socket = request.socket;
    this.prepare(request, socket).then(
      (prepared) => {
        if (!prepared) return; // refused, and answered
        let started = false;
        this.starting.set(request, (ws) => {
          started = true;
          prepared.start(ws);
        });
        // ws completes the upgrade synchronously: the starter runs, or the socket was no longer writable.
        done(true);
        this.starting.delete(request);
        if (!started) prepared.abandon();
      },
      (error: unknown) => {
        // A store or backend failure answers this one client; it never takes the relay down.
        this.options.log.error({ err: (error as Error).message }, 'VNC WebSocket upgrade failed');
        if (!socket.destroyed) refuseUpgrade(socket, 503, 'Service Unavailable', 'the relay could not open this console; try again');
      },
    );
  }

  /** Same origin as the page (scheme and Host the browser used), or one the config lists. */
  private originAllowed(origin: string, request: IncomingMessage): boolean {
    const given = origin.toLowerCase(); // scheme and host are case-insensitive; the config's list is stored lower-case
    if ((this.options.allowedOrigins ?? []).includes(given)) return true;
    const scheme = this.options.tls ? 'https' : 'http';
    return request.headers.host !== undefined && given === `${scheme}://${request.headers.host.toLowerCase()}`;
  }

  /**
   * Everything before the WebSocket: the origin, the token, the console and the VM's screen.
   * Undefined when refused (the refusal is written); else how to start the session or give up.
   */
  private async prepare(request: IncomingMessage, socket: Duplex): Promise<{ start(ws: WebSocket): void; abandon(): void } | undefined> {
    const endpoint = this.endpointOf.get(request.socket as Socket) ?? '';
    const remoteAddress = normalizeRemoteAddress(request.socket.remoteAddress);
    const log = this.options.log.child({ endpoint, remote: remoteAddress });
    const url = new URL(request.url ?? '/', 'http://relay');
    // A browser on another site must not open the console with a token it got hold of (OpenStack OSSN-0008): a browser
    // always sends Origin, and the noVNC page is served from this very host. Clients without Origin are not browsers.
    const origin = request.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin, request)) {
      log.info({ origin: origin.slice(0, 200) }, 'VNC WebSocket refused: cross-origin');
      return refuseUpgrade(socket, 403, 'Forbidden', `a WebSocket from another origin (${origin.slice(0, 100)}) is refused; open the console link itself, or list the origin in vnc.allowedOrigins`);
    }
    const token = url.searchParams.get('token');
    if (!token) return refuseUpgrade(socket, 401, 'Unauthorized', 'missing token: mint one with POST /v1/virtualMachines/{vm}/vncTokens');
    const redemption = this.options.tokens.redeem(token, endpoint);
    if (!redemption.ok) {
      log.info({ reason: redemption.reason }, 'VNC WebSocket refused: token');
      this.options.onTokenRefused?.();
      // An address that keeps guessing tokens waits longer and longer for each refusal.
      const delay = this.options.failures.fail(remoteAddress);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay).unref());
      return refuseUpgrade(socket, 403, 'Forbidden', `the token is invalid, already used, expired (${this.ttlText}), or for another endpoint`);
    }
    const { grant } = redemption;
    const { supervisor, consoles } = this.options;
    const vm = this.options.virtualMachines.get(grant.virtualMachine);
    if (!vm) return refuseUpgrade(socket, 404, 'Not Found', `no virtual machine named ${grant.virtualMachine}`);

    // The connection is admitted (so console changes reach it) before the waits that follow; a
    // change while it is still pending marks it revoked, and it is refused instead of started.
    let session: VncSession | undefined;
    let revoked: CloseReason | undefined;
    const admitted: AdmittedConnection = {
      grant,
      endpoint,
      remoteAddress,
      close: (reason) => {
        if (session) return session.close(reason);
        revoked ??= reason;
        return Promise.resolve();
      },
    };
    const stillAdmitted = async (): Promise<{ expiration: number } | undefined> => {
      const current = await consoles.getConsole(grant.virtualMachine);
      const reason = revocationReason(grant, current, Date.now());
      if (reason) revoked ??= { code: reason, message: revocationMessage(reason, grant.virtualMachine) };
      return revoked || !current ? undefined : current;
    };
    const refuseRevoked = (): undefined => refuseUpgrade(socket, 403, 'Forbidden', revoked?.message ?? revocationMessage('deleted', grant.virtualMachine));

    const current = await stillAdmitted();
    if (!current) return refuseRevoked();
    supervisor.admit(admitted, current.expiration);
    // From here, every way out but a started session forgets the connection and drops the VM's screen.
    let vnc: VncConnection | undefined;
    const abandon = (): void => {
      vnc?.socket.destroy();
      supervisor.forget(admitted);
    };
    try {
      try {
        vnc = await vm.openVnc();
      } catch (error) {
        abandon();
        return refuseUpgrade(socket, 503, 'Service Unavailable', (error as Error).message);
      }
      // Checked again after the last wait: the console may have changed while the VM's screen was opening.
      const latest = await stillAdmitted();
      if (socket.destroyed || !latest) {
        abandon();
        return socket.destroyed ? undefined : refuseRevoked();
      }
    } catch (error) {
      abandon();
      throw error;
    }
    const opened = vnc;
    return {
      start: (ws) => {
        this.preauth.get(request.socket)?.passed();
        session = this.startSession(ws, opened, admitted, log);
      },
      abandon,
    };
  }

  private startSession(ws: WebSocket, vnc: VncConnection, admitted: AdmittedConnection, log: Logger): VncSession {
    const { supervisor } = this.options;
    const { grant, endpoint, remoteAddress } = admitted;
    const closeClient = (reason: string): Promise<void> =>
      new Promise((resolve) => {
        if (ws.readyState === ws.CLOSED) return resolve();
        const timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 1000);
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        // A close reason is at most 123 bytes.
        ws.close(CLOSE_BY_RELAY, Buffer.from(reason).subarray(0, 123).toString());
      });
    const vmLog = log.child({ vm: grant.virtualMachine });
    const session = new VncSession(grant.virtualMachine, 'websocket', endpoint, remoteAddress, webSocketClient(ws, closeClient, vmLog), vnc, vmLog, (ended) => {
      clearInterval(pinger);
      supervisor.forget(admitted);
      supervisor.release(ended);
    });
    // Pings keep idle sessions alive through proxies and find dead peers.
    let alive = true;
    ws.on('pong', () => (alive = true));
    const pinger = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, this.options.pingIntervalMs);
    pinger.unref();
    supervisor.claim(session, grant);
    session.start();
    return session;
  }

  close(): void {
    for (const socket of this.handshaking) socket.destroy();
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.http.close();
  }
}
