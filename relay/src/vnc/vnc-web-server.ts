import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ConsoleDirectory, VncStream } from '../sessions/console-seam.js';
import { normalizeRemoteAddress } from '../core/cidr.js';
import { describeDuration } from '../core/duration.js';
import { revocationMessage, revocationReason, sharingOf, type ConsoleRecord } from '../core/console-rules.js';
import type { Logger } from '../logger.js';
import type { AdmittedConnection, CloseReason } from '../sessions/live-session.js';
import type { ConsoleLookup, SessionSupervisor } from '../sessions/session-supervisor.js';
import { TLS_SERVER_POLICY } from '../tls/tls-material.js';
import type { FailureBackoff, StartupLimiter } from '../core/preauth-limits.js';
import type { PreauthMetrics } from '../metrics/relay-metrics.js';
import { ConnectionGate } from '../endpoints/connection-gate.js';
import { noticeQueue, NOTICES_PROTOCOL, VncSession, webSocketClient, webSocketCloser } from './vnc-session.js';
import type { DroppedMessage } from '../core/rfb-observe-filter.js';
import type { TokenRedemption, VncTokens } from './vnc-tokens.js';
import { VncPage } from './vnc-page.js';
import { originAllowed, refuseUpgrade } from './upgrade-refusals.js';

/** WebSocket close code for "closed by the relay"; the reason text says why. */
export const CLOSE_BY_RELAY = 4000;
const MAX_CLIENT_MESSAGE = 4 * 1024 * 1024;

export interface VncWebServerOptions {
  tokens: VncTokens;
  virtualMachines: ConsoleDirectory;
  supervisor: SessionSupervisor;
  consoles: ConsoleLookup;
  pingIntervalMs: number;
  log: Logger;
  /** Serve `https://` and `wss://` with this certificate (the API's); plain when absent. */
  tls?: { cert: Buffer; key: Buffer };
  /** A WebSocket came with a token that is unknown, used, expired or for another endpoint (metrics). */
  onTokenRefused?: () => void;
  /** An observer's viewer sent a message the relay dropped (metrics). */
  onObserverDropped?: (message: DroppedMessage) => void;
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

/**
 * The WebSocket VNC path on every endpoint (port 6080): `ws://<ip>:6080/?token=…` carries raw
 * RFB in binary frames; the same URL over plain HTTP serves a noVNC page that connects back
 * with the token. Sockets arrive from the endpoint listeners after their source check.
 */
export class VncWebServer {
  private readonly http = createServer((request, response) => this.page.handle(request, response, this.endpointOf.get(request.socket as Socket) ?? ''));
  private readonly page: VncPage;
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_CLIENT_MESSAGE,
    // noVNC asks for "binary"; websockify clients may ask for nothing. The relay's own page also offers
    // "lifeline.notices" (text messages with the relay's notices beside the RFB ones). Anything else is answered without a protocol.
    handleProtocols: (protocols) => (protocols.has(NOTICES_PROTOCOL) ? NOTICES_PROTOCOL : protocols.has('binary') ? 'binary' : false),
    // ws checks the opening handshake (method, Upgrade, key, version, protocols) first and only then
    // calls this: so a malformed handshake neither uses up its token nor opens the VM's screen.
    verifyClient: (info: { req: IncomingMessage }, done: (verified: boolean) => void) => this.verify(info.req, done),
  });
  /** The session starter of each upgrade ws is completing (set only while `done(true)` runs). */
  private readonly starting = new Map<IncomingMessage, (ws: WebSocket) => void>();
  private readonly endpointOf = new WeakMap<Socket, string>();
  /** How long a token waits for its WebSocket, as the pages and refusals say it. */
  private readonly ttlText: string;
  /** Admission, grace time and the TLS split, until the WebSocket upgrade. */
  private readonly gate: ConnectionGate;

  constructor(private readonly options: VncWebServerOptions) {
    this.ttlText = describeDuration(options.tokens.ttlMs);
    this.page = new VncPage({ tokens: options.tokens, failures: options.failures, log: options.log, ttlText: this.ttlText, ...(options.onTokenRefused && { onTokenRefused: options.onTokenRefused }) });
    // No TLS 1.2 renegotiation: each one costs the relay a handshake, so a client could loop them (the API allows 3).
    const secureContext = options.tls && createSecureContext({ ...TLS_SERVER_POLICY, cert: options.tls.cert, key: options.tls.key });
    this.gate = new ConnectionGate({
      startups: options.startups,
      graceMs: options.loginGraceTimeMs,
      metrics: options.metrics,
      ...(secureContext && {
        tls: {
          context: secureContext,
          plaintext: { contentType: 'text/plain; charset=utf-8', body: 'This port speaks TLS: open the https:// link the relay gave (wss:// for WebSocket clients).\n' },
          onError: (error) => options.log.debug({ err: error.message }, 'VNC TLS connection failed'),
        },
      }),
    });
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(request, socket, head));
    // ws's handshake refusals, in the relay's words and format (plain text, Connection: close).
    this.wss.on('wsClientError', (error: Error, socket: Duplex, request: IncomingMessage) => {
      if (request.method !== 'GET') return refuseUpgrade(socket, 405, 'a WebSocket opening handshake is a GET request', { Allow: 'GET' });
      const versionHeader: Record<string, string> = /Version/.test(error.message) ? { 'Sec-WebSocket-Version': '13, 8' } : {};
      refuseUpgrade(socket, 400, `WebSocket handshake refused: ${error.message}`, versionHeader);
    });
    // Malformed HTTP (a bad request line or header) gets a plain 400, as Node's default does.
    this.http.on('clientError', (_error, socket) => refuseUpgrade(socket, 400, 'malformed HTTP request'));
    // No HTTP header or request timeouts here: this server never listens, so Node would never run them.
    // Everything before the upgrade is bounded by vnc.loginGraceTime (the pre-auth guard in handle()).
  }

  /** Whether the port speaks `https://`/`wss://`. */
  get secure(): boolean {
    return this.gate.secure;
  }

  handle(socket: Socket, endpoint: string): void {
    // Until its WebSocket upgrade, a connection holds a MaxStartups slot and runs against the grace time.
    if (!this.gate.admit(socket)) return;
    // TLS first: a client that does not complete the handshake (a port scan) never reaches HTTP; plain HTTP is told to use https.
    this.gate.open(socket, (ready) => {
      this.endpointOf.set(ready, endpoint);
      this.http.emit('connection', ready);
    });
  }

  /** A file of the page: our assets under /lifeline/, or noVNC's ES modules (core/ and vendor/ only, .js only). */
  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://relay');
    } catch {
      return refuseUpgrade(socket, 400, 'malformed URL');
    }
    if (url.pathname !== '/') return refuseUpgrade(socket, 404, 'connect to /?token=<token>');
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
        if (!socket.destroyed) refuseUpgrade(socket, 503, 'the relay could not open this console; try again');
      },
    );
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
    if (origin !== undefined && !originAllowed(origin, request.headers.host, this.gate.secure, this.options.allowedOrigins ?? [])) {
      log.info({ origin: origin.slice(0, 200) }, 'VNC WebSocket refused: cross-origin');
      return refuseUpgrade(socket, 403, `a WebSocket from another origin (${origin.slice(0, 100)}) is refused; open the console link itself, or list the origin in vnc.allowedOrigins`);
    }
    const token = url.searchParams.get('token');
    if (!token) return refuseUpgrade(socket, 401, 'missing token: mint one with POST /v1/virtualMachines/{vm}/vncTokens');
    let redemption: TokenRedemption;
    try {
      redemption = await this.options.tokens.redeem(token, endpoint);
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'VNC WebSocket refused: the token store cannot be reached');
      return refuseUpgrade(socket, 503, 'the relay cannot check console tokens now (its database is unreachable): no new session can start; try again shortly');
    }
    if (!redemption.ok) {
      log.info({ reason: redemption.reason }, 'VNC WebSocket refused: token');
      this.options.onTokenRefused?.();
      // An address that keeps guessing tokens waits longer and longer for each refusal.
      const delay = this.options.failures.fail(remoteAddress);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay).unref());
      return refuseUpgrade(socket, 403, `the token is invalid, already used, expired (${this.ttlText}), or for another endpoint`);
    }
    const { grant } = redemption;
    const { supervisor, consoles } = this.options;
    const vm = this.options.virtualMachines.get(grant.virtualMachine);
    if (!vm) return refuseUpgrade(socket, 404, `no virtual machine named ${grant.virtualMachine}`);

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
    const stillAdmitted = async (): Promise<ConsoleRecord | undefined> => {
      const current = await consoles.getConsole(grant.virtualMachine);
      const reason = revocationReason(grant, current, Date.now());
      if (reason) revoked ??= { code: reason, message: revocationMessage(reason, grant.virtualMachine) };
      return revoked || !current ? undefined : current;
    };
    const refuseRevoked = (): undefined => refuseUpgrade(socket, 403, revoked?.message ?? revocationMessage('deleted', grant.virtualMachine));

    const current = await stillAdmitted();
    if (!current) return refuseRevoked();
    const observeRefusal = grant.mode === 'observe' ? supervisor.sharing.observerRefusal(vm.name, sharingOf(current), 'vnc') : undefined;
    if (observeRefusal) return refuseUpgrade(socket, 403, observeRefusal);
    supervisor.admit(admitted, current.expiration);
    // From here, every way out but a started session forgets the connection and drops the VM's screen.
    let vnc: VncStream | undefined;
    const sessionId = randomUUID();
    // A remote console's lines for the session ("recorded") may come before the session exists.
    const notices = noticeQueue();
    const abandon = (): void => {
      vnc?.socket.destroy();
      supervisor.forget(admitted);
    };
    try {
      try {
        vnc = await vm.openVnc({ grant, remoteAddress, path: 'websocket', session: sessionId, endpoint, ...(grant.mode === 'observe' && { observe: true }), notify: notices.notify });
      } catch (error) {
        abandon();
        return refuseUpgrade(socket, 503, (error as Error).message);
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
        this.gate.passed(request.socket);
        const started = this.startSession(ws, opened, admitted, log, sessionId);
        session = started;
        notices.deliver((line) => started.notify(line));
      },
      abandon,
    };
  }

  private startSession(ws: WebSocket, vnc: VncStream, admitted: AdmittedConnection, log: Logger, id: string): VncSession {
    const { supervisor } = this.options;
    const { grant, endpoint, remoteAddress } = admitted;
    const vmLog = log.child({ vm: grant.virtualMachine });
    const observer = grant.mode === 'observe' ? { dropped: (message: DroppedMessage) => this.options.onObserverDropped?.(message) } : undefined;
    const session = new VncSession(grant.virtualMachine, 'websocket', endpoint, remoteAddress, webSocketClient(ws, webSocketCloser(ws, CLOSE_BY_RELAY), vmLog), vnc, vmLog, (ended) => {
      clearInterval(pinger);
      supervisor.forget(admitted);
      supervisor.release(ended);
    }, id, observer);
    // Pings keep idle sessions alive through proxies and find dead peers.
    let alive = true;
    ws.on('pong', () => (alive = true));
    const pinger = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, this.options.pingIntervalMs);
    pinger.unref();
    // An observer takes no slot and displaces nobody; any other session is the VM's one VNC session.
    if (observer) supervisor.join(session, grant);
    else supervisor.claim(session, grant, this.options.virtualMachines.get(grant.virtualMachine));
    session.start();
    return session;
  }

  close(): void {
    this.gate.close();
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.http.close();
  }
}
