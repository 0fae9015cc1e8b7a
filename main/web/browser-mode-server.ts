import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { endWithHttpResponse, serveStaticFile } from '@lifeline/relay/client';
import type { DesktopEvent } from '../../preload/contract.js';
import { dispatch } from '../services/api-dispatch.js';
import type { DesktopService } from '../services/desktop-service.js';
import { bridgeStream } from '../services/stream-bridge.js';
import { webSocketEndpoint } from './websocket-endpoint.js';

const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8' };
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Answers on a raw socket (an upgrade, a malformed request) with a bodiless status and closes it. */
function refuseSocket(socket: Duplex, status: number): void {
  endWithHttpResponse(socket, status);
}

/** Parses a request target; undefined for anything `new URL` would throw on (`//[`). */
function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://127.0.0.1');
  } catch {
    return undefined;
  }
}

export interface BrowserModeOptions {
  port: number;
  service: DesktopService;
  /** The built renderer (index.html, app.js, app.css). */
  rendererDir: string;
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Browser mode: the same renderer and main-process services, served on 127.0.0.1 with the
 * desktop contract over a WebSocket. A one-time token in the printed URL is traded for a
 * session cookie; every request and WebSocket needs that cookie and (for WebSockets) our origin.
 */
export class BrowserModeServer {
  private readonly http = createServer((request, response) => this.onRequest(request, response));
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1024 * 1024, handleProtocols: (p) => (p.has('binary') ? 'binary' : false) });
  private oneTimeToken: string | undefined = randomBytes(24).toString('base64url');
  private readonly session = randomBytes(32).toString('base64url');
  private port = 0;
  /** The pages connected over /rpc. */
  private readonly pages = new Set<WebSocket>();

  constructor(private readonly options: BrowserModeOptions) {
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => undefined);
      try {
        this.onUpgrade(request, socket, head);
      } catch {
        refuseSocket(socket, 400);
      }
    });
    this.http.on('clientError', (_error, socket) => refuseSocket(socket, 400));
  }

  /**
   * Cookies are not bound to a port: the name carries ours, so another local service on
   * 127.0.0.1 (or a second Lifeline) neither receives a cookie it can use here nor overwrites ours.
   */
  private get cookieName(): string {
    return `lifeline_session_${this.port}`;
  }

  /** Listens on 127.0.0.1 and returns the URL to open (it works once). */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port, '127.0.0.1', () => resolve());
    });
    this.port = (this.http.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}/?token=${this.oneTimeToken}`;
  }

  private authorized(request: IncomingMessage): boolean {
    const name = `${this.cookieName}=`;
    const cookie = (request.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(name));
    return cookie !== undefined && equal(cookie.slice(name.length), this.session);
  }

  private sameOrigin(request: IncomingMessage): boolean {
    return request.headers.origin === `http://127.0.0.1:${this.port}` || request.headers.origin === `http://localhost:${this.port}`;
  }

  /** Whatever a request holds, it gets an answer: a malformed one a plain 400, never a dead app with orphaned VMs. */
  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    try {
      this.serveRequest(request, response);
    } catch {
      if (response.headersSent) response.destroy();
      else response.writeHead(400, { 'Content-Type': 'text/plain', Connection: 'close' }).end('bad request\n');
    }
  }

  private serveRequest(request: IncomingMessage, response: ServerResponse): void {
    response.setHeader('Content-Security-Policy', CSP);
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Referrer-Policy', 'no-referrer');
    response.setHeader('Cache-Control', 'no-store');
    const url = requestUrl(request.url);
    if (!url) {
      response.writeHead(400, { 'Content-Type': 'text/plain' }).end('malformed request URL\n');
      return;
    }
    const token = url.searchParams.get('token');
    if (url.pathname === '/' && token) {
      if (this.oneTimeToken && equal(token, this.oneTimeToken)) {
        this.oneTimeToken = undefined; // used up: a copied URL is worthless afterwards
        response.writeHead(302, { 'Set-Cookie': `${this.cookieName}=${this.session}; HttpOnly; SameSite=Strict; Path=/`, Location: '/' }).end();
        return;
      }
      if (!this.authorized(request)) {
        response.writeHead(403, { 'Content-Type': MIME['.html'] }).end('<!doctype html><title>Lifeline</title><p>This link was already used or is not valid. Restart <code>npm run web</code> for a new one.</p>');
        return;
      }
    }
    if (!this.authorized(request)) {
      response.writeHead(401, { 'Content-Type': MIME['.html'] }).end('<!doctype html><title>Lifeline</title><p>Open the URL that <code>npm run web</code> printed (it works once).</p>');
      return;
    }
    serveStaticFile(request, response, this.options.rendererDir, url.pathname === '/' ? '/index.html' : url.pathname);
  }

  private onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.authorized(request) || !this.sameOrigin(request)) {
      refuseSocket(socket, 403);
      return;
    }
    const url = requestUrl(request.url);
    if (!url) {
      refuseSocket(socket, 400);
      return;
    }
    if (url.pathname === '/rpc') {
      this.wss.handleUpgrade(request, socket, head, (ws) => this.serveRpc(ws));
      return;
    }
    const stream = url.pathname.startsWith('/streams/') ? this.options.service.stream(url.pathname.slice('/streams/'.length)) : undefined;
    if (!stream) {
      refuseSocket(socket, 404);
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      ws.on('error', () => undefined);
      bridgeStream(stream, webSocketEndpoint(ws));
    });
  }

  private serveRpc(ws: WebSocket): void {
    const service = this.options.service;
    const onEvent = (event: DesktopEvent): void => ws.send(JSON.stringify({ event }));
    service.events.on('event', onEvent);
    this.pages.add(ws);
    ws.on('close', () => {
      service.events.off('event', onEvent);
      this.pages.delete(ws);
      // The last page went away (reloaded, closed): its tabs go too, rather than keep SSH sessions renewing for nobody.
      if (this.pages.size === 0) void service.close();
    });
    ws.on('message', async (data, isBinary) => {
      let message: { id?: unknown; method?: unknown; args?: unknown };
      try {
        message = isBinary ? {} : (JSON.parse(data.toString()) as typeof message);
      } catch {
        ws.send(JSON.stringify({ id: null, error: { message: 'malformed message: send JSON {id, method, args}' } }));
        return;
      }
      const id = typeof message.id === 'number' ? message.id : null;
      try {
        const result = await dispatch(service, message.method, message.args);
        ws.send(JSON.stringify({ id, result: result ?? null }));
      } catch (error) {
        ws.send(JSON.stringify({ id, error: { message: (error as Error).message, name: (error as Error).name } }));
      }
    });
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
