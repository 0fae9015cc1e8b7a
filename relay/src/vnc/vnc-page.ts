import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeRemoteAddress } from '../core/cidr.js';
import type { FailureBackoff } from '../core/preauth-limits.js';
import { serveStaticFile } from '../http/static-files.js';
import type { Logger } from '../logger.js';
import type { VncTokens } from './vnc-tokens.js';

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

export interface VncPageContext {
  tokens: VncTokens;
  failures: FailureBackoff;
  log: Logger;
  /** How long a token waits for its WebSocket, as the pages say it. */
  ttlText: string;
  onTokenRefused?: () => void;
}

/**
 * The VNC port's plain-HTTP side: the token URL serves the noVNC page (the token is only looked
 * at, never used up: the page's WebSocket uses it), and the page's own files; anything else is
 * a 404, a bad token a slowed 403 page.
 */
export class VncPage {
  constructor(private readonly context: VncPageContext) {}

  private serveFile(request: IncomingMessage, response: ServerResponse, pathname: string): void {
    for (const [prefix, root] of STATIC_ROOTS) {
      if (pathname.startsWith(prefix) && (prefix === '/lifeline/' ? LIFELINE_ASSETS.has(pathname) : extname(pathname) === '.js')) {
        return serveStaticFile(request, response, root, pathname.slice(prefix.length - 1));
      }
    }
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  }

  /** Untrusted input never reaches a throwing call unguarded: whatever slips through is a plain 400, not a dead relay. */
  handle(request: IncomingMessage, response: ServerResponse, endpoint: string): void {
    try {
      this.serveRequest(request, response, endpoint);
    } catch (error) {
      this.context.log.warn({ err: (error as Error).message }, 'VNC page request failed');
      plainError(response, 400, 'bad request');
    }
  }

  private serveRequest(request: IncomingMessage, response: ServerResponse, endpoint: string): void {
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
      const token = url.searchParams.get('token');
      const send = (status: number, html: string): void => void response.writeHead(status, { 'Content-Type': MIME['.html'] }).end(request.method === 'HEAD' ? undefined : html);
      if (!token) return send(400, errorPage('No console token', 'This address needs a ?token=… from POST /v1/virtualMachines/{vm}/vncTokens.'));
      const answer = (valid: boolean): void => {
        if (valid) return serveStaticFile(request, response, ASSETS, '/index.html');
        // Slowed like a refused WebSocket: the page must not be a faster way to guess tokens.
        const delay = this.context.failures.fail(normalizeRemoteAddress(request.socket.remoteAddress));
        this.context.onTokenRefused?.();
        const expired = (): void => send(403, errorPage('Console link expired', `This console link is invalid, already used, or older than ${this.context.ttlText}. Ask for a new one.`));
        if (delay > 0) setTimeout(expired, delay).unref();
        else expired();
      };
      const valid = this.context.tokens.peek(token, endpoint);
      if (typeof valid === 'boolean') return answer(valid);
      valid.then(answer, (error: Error) => {
        this.context.log.warn({ err: error.message }, 'VNC page: the token store cannot be reached');
        send(503, errorPage('Console not reachable now', 'The relay cannot check console links at the moment (its database is unreachable). Try again shortly.'));
      });
      return;
    }
    this.serveFile(request, response, url.pathname);
  }
}
