import type { SecureContextOptions } from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { newApiToken, tokenPrefix } from '../admin-token.js';
import type { AuditEvent, AuditEventInput, AuditLog } from '../audit/audit-log.js';
import type { RefusalRecorder } from '../audit/refusal-recorder.js';
import { connectionKey, type ConnectionLimits } from './connection-limits.js';
import { PowerActionError, type VirtualMachine, type VirtualMachineRegistry } from '../backends/virtual-machines.js';
import { detailedStatus, parseRfc3339, type ConsoleRecord } from '../core/console-rules.js';
import { RelayError } from '../core/relay-error.js';
import { describeVmLimit, hasScope, SHARED_SCOPES, vmAllowed, type Scope } from '../core/scopes.js';
import { hashToken } from '../core/token-hash.js';
import type { TokenRecord } from '../store/store.js';
import { answerPlaintextOn } from '../tls/tls-material.js';
import type { FailureBackoff, StartupLimiter } from '../core/preauth-limits.js';
import { guardPreauth, type PreauthGuard } from '../endpoints/preauth-guard.js';
import type { PreauthMetrics, RelayMetrics } from '../metrics/relay-metrics.js';
import type { EndpointManager } from '../endpoints/endpoint-manager.js';
import type { Logger } from '../logger.js';
import type { ConsoleService } from '../sessions/console-service.js';
import type { LiveSession } from '../sessions/live-session.js';
import type { SessionSupervisor } from '../sessions/session-supervisor.js';
import type { Store } from '../store/store.js';
import type { VncTokenService } from '../vnc/vnc-tokens.js';
import * as S from './schemas.js';

export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface ApiDependencies {
  store: Store;
  consoles: ConsoleService;
  endpoints: EndpointManager;
  virtualMachines: VirtualMachineRegistry;
  supervisor: SessionSupervisor;
  vncTokens: VncTokenService;
  relayInfo: () => Omit<S.RelayInfo, 'endpoints' | 'caller'>;
  log: Logger;
  audit: AuditLog;
  /** Request counts and latencies go here, and `GET /metrics` renders it. */
  metrics?: RelayMetrics;
  /** Delays the 401s of an address that keeps sending bad tokens. */
  failures?: FailureBackoff;
  /** Refusals go to the audit trail through this (coalesced and capped); written directly without it. */
  refusals?: RefusalRecorder;
  /** Caps on API connections per address, per token and in all (connection-limits.ts). */
  connectionLimits?: ConnectionLimits;
  /**
   * MaxStartups and a grace time for connections that have not yet made an authenticated request
   * (a connection passes with its first request carrying a valid token).
   */
  preauth?: { startups: StartupLimiter; graceMs: number; metrics?: PreauthMetrics };
  now?: () => number;
  /** TLS material for the API (and the scheme of VNC token URLs); plain HTTP when absent. */
  https?: SecureContextOptions & { cert: Buffer; key: Buffer };
}

/** What a route needs of its caller, and what it records (route `config`). */
interface RouteAccess {
  /** The scope the caller's token needs; none: any valid token. */
  scope?: Scope;
  /** The audit action an answered request is recorded as; GETs are recorded only when refused. */
  audit?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** Tokens use their `lastUsedAt` to the minute: at most one store write a minute per token. */
const TOUCH_INTERVAL_MS = 60_000;

export function tokenResource(record: TokenRecord): S.TokenResource {
  return {
    id: record.id,
    name: record.name,
    prefix: record.prefix,
    scopes: record.scopes as S.TokenResource['scopes'],
    ...(record.virtualMachines && { virtualMachines: record.virtualMachines }),
    createdAt: iso(record.createdAt),
    ...(record.expiresAt !== undefined && { expiresAt: iso(record.expiresAt) }),
    ...(record.lastUsedAt !== undefined && { lastUsedAt: iso(record.lastUsedAt) }),
  };
}

/** An address or host name as a URL's host: IPv6 in brackets. */
function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function consoleResource(record: ConsoleRecord, now: number): S.ConsoleResource {
  return {
    virtualMachine: record.virtualMachine,
    enabled: record.enabled,
    sshPublicKey: { keyData: record.keyData },
    keyFingerprint: record.keyFingerprint,
    expiration: iso(record.expiration),
    virtualMachineAccessId: record.accessId,
    provisioningState: 'Succeeded',
    detailedStatus: detailedStatus(record, now),
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}

/** A console as the audit trail records it: never the key itself, its fingerprint. */
function consoleSummary(record: ConsoleRecord, created: boolean): Record<string, unknown> {
  return { enabled: record.enabled, keyFingerprint: record.keyFingerprint, expiration: iso(record.expiration), virtualMachineAccessId: record.accessId, created };
}

function sessionResource(session: LiveSession): S.SessionResource {
  return {
    id: session.id,
    virtualMachine: session.virtualMachine,
    kind: session.kind,
    path: session.path,
    endpoint: session.endpoint,
    remoteAddress: session.remoteAddress,
    startedAt: iso(session.startedAt),
    bytesIn: session.bytesIn,
    bytesOut: session.bytesOut,
  };
}

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns Ajv's first issue into a sentence that names the field (and, for a choice of values, lists them). */
function describeValidation(issues: readonly ValidationIssue[], context: string): string {
  const issue = issues[0]!;
  const field = `${context}${issue.instancePath.replace(/\//g, '.')}`.replace(/^body\./, '');
  // A union of literals (the power action, a scope) fails on each branch: list the values it takes.
  const allowed = issues.filter((other) => other.keyword === 'const' && other.instancePath === issue.instancePath).map((other) => String(other.params.allowedValue));
  if (allowed.length > 1) return `${field} must be one of ${allowed.join(', ')}`;
  if (issue.keyword === 'enum' && Array.isArray(issue.params.allowedValues)) return `${field} must be one of ${(issue.params.allowedValues as unknown[]).join(', ')}`;
  if (issue.keyword === 'additionalProperties') {
    return `unknown field "${String(issue.params.additionalProperty).slice(0, 64)}" in ${field}; remove it`;
  }
  if (issue.keyword === 'required') return `${field === 'body' ? 'body' : field}: missing required field "${String(issue.params.missingProperty)}"`;
  if (issue.keyword === 'minProperties') return `${field}: send at least one field to change`;
  return `${field} ${issue.message ?? 'is invalid'}`;
}

/**
 * Builds the control API. It never listens: the relay's entry point does that, and tests
 * call `inject` on it directly.
 */
export function buildApi(deps: ApiDependencies): FastifyInstance {
  const now = deps.now ?? Date.now;
  /** Connections on which the HTTP parser handed Fastify a request (so Fastify answers it). */
  const answeredSockets = new WeakSet<object>();
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }),
    // Two log lines for every request let any token grow the log without bound; onResponse below logs what matters.
    disableRequestLogging: true,
    bodyLimit: BODY_LIMIT_BYTES,
    // A request must arrive whole within 15 s (its headers within 10 s, below): slow-loris clients are let go.
    requestTimeout: 15_000,
    // Our own 503 (below) answers in the documented error shape; Fastify's would not.
    return503OnClosing: false,
    // Errors Fastify raises before routing (a malformed percent-encoding, an over-long path parameter), in our shape.
    frameworkErrors: (error, _request, reply) => {
      const refusal =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new RelayError(414, 'UriTooLong', 'a path segment is longer than the relay accepts; names are at most 63 characters')
          : new RelayError(400, 'InvalidUrl', 'the request URL is malformed (bad percent-encoding?)');
      void (reply as unknown as { status(code: number): { send(body: unknown): void } }).status(refusal.status).send({ error: { code: refusal.code, message: refusal.message } });
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Malformed HTTP (a bad request line or header, a timeout) never reaches a route: answer it in our shape too.
    clientErrorHandler: (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      // A request on this connection was already parsed and answered (a bad URL with a broken body
      // after it): a second answer would reach the client as garbage after the first. Just close.
      if (answeredSockets.has(socket)) return void socket.destroy();
      const [status, text, code, message] =
        error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'RequestTimeout', 'the request took too long to arrive']
          : error.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large', 'HeadersTooLarge', 'the request headers are too large']
            : [400, 'Bad Request', 'MalformedRequest', 'the request is not well-formed HTTP/1.1'];
      const body = JSON.stringify({ error: { code, message } });
      if (!socket.writable) return void socket.destroy();
      // end(), not write() then destroy(): over TLS the answer must be flushed before the connection goes.
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      setTimeout(() => socket.destroy(), 1000).unref();
    },
    // Node would answer a missing Host header itself, with an empty body; the hook below answers it in our shape.
    // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default): every second here.
    http: { requireHostHeader: false, connectionsCheckingInterval: 1000 },
    ...(deps.https ? { https: { ...deps.https, requireHostHeader: false, connectionsCheckingInterval: 1000 } } : {}),
  }) as unknown as FastifyInstance;

  app.server.on('request', (request: { socket: object }) => answeredSockets.add(request.socket));
  // Before the pre-auth guard: a connection over an address's cap is closed at once, without a grace slot.
  deps.connectionLimits?.attach(app.server);
  app.server.headersTimeout = 10_000;

  // Plain HTTP sent to the HTTPS API is told where to go, in the documented error shape.
  if (deps.https) {
    answerPlaintextOn(app.server, () => ({
      contentType: 'application/json',
      text: JSON.stringify({ error: { code: 'TlsRequired', message: 'this relay\'s API speaks HTTPS: use https:// (see lifeline-relay info for the certificate fingerprint)' } }),
    }));
  }

  // Pre-authentication limits, from the TCP accept (after the plain-HTTP check above, so an idle connection is counted too).
  // TLS sockets are found by their TCP connection's address and port: the same on the raw and the TLS socket.
  const pending = new Map<string, PreauthGuard>();
  if (deps.preauth) {
    const { startups, graceMs, metrics } = deps.preauth;
    app.server.on('connection', (socket: Socket) => {
      const guard = guardPreauth(socket, { startups, graceMs, metrics });
      if (!guard) return;
      const key = connectionKey(socket);
      pending.set(key, guard);
      socket.once('close', () => pending.delete(key));
    });
  }

  // Which methods each route pattern takes, for 405 answers (HEAD comes with every GET).
  const routeMethods: Array<{ method: string; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}$`);
    for (const method of [route.method].flat()) routeMethods.push({ method, pattern });
  });

  // JSON only: Fastify would otherwise hand text/plain bodies to the JSON schemas as strings.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof RelayError) {
      return reply.status(error.status).send({ error: { code: error.code, message: error.message } });
    }
    if (error.validation) {
      const issues = error.validation as unknown as ValidationIssue[];
      return reply.status(400).send({ error: { code: 'ValidationFailed', message: describeValidation(issues, error.validationContext ?? 'body') } });
    }
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.status(413).send({ error: { code: 'PayloadTooLarge', message: `the request body is larger than ${BODY_LIMIT_BYTES} bytes` } });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.status(415).send({ error: { code: 'UnsupportedMediaType', message: 'send the body as Content-Type: application/json' } });
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return reply.status(400).send({ error: { code: 'InvalidJson', message: 'the body is empty; send a JSON object' } });
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.status(400).send({ error: { code: 'InvalidRequest', message: 'Content-Length does not match the body' } });
    }
    if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return reply.status(400).send({ error: { code: 'InvalidJson', message: 'the body is not valid JSON' } });
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: { code: 'InvalidRequest', message: error.message } });
    }
    // The store's disk is full, read-only or failing: the request is refused as unavailable, not as a bug.
    const storeCode = (error as { code?: unknown }).code;
    if (typeof storeCode === 'string' && /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|BUSY|LOCKED|PROTOCOL|NOMEM)/.test(storeCode)) {
      request.log.error({ err: error.message, code: storeCode }, 'the store refused a request');
      deps.metrics?.storeWriteFailed();
      return reply.status(503).send({ error: { code: 'StoreUnavailable', message: `the relay's store cannot be written now (${storeCode}: disk full or read-only?); nothing was changed; try again once it is fixed` } });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.status(500).send({ error: { code: 'InternalError', message: 'the relay failed to handle this request; see its log' } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'NotFound', message: `no such API route: ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` } }),
  );

  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && !request.headers.host) {
      throw new RelayError(400, 'MalformedRequest', 'an HTTP/1.1 request needs a Host header');
    }
  });

  // While the relay shuts down, new requests get a 503 in the documented shape (and the connection is not kept).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    void reply.header('Connection', 'close');
    throw new RelayError(503, 'ServiceUnavailable', 'the relay is shutting down; try again when it is back');
  });

  /** Which token each request came with (its record: hash, name, scopes; never the token itself). */
  const callers = new WeakMap<object, TokenRecord>();
  /** Requests whose refusal was only counted, not written: not logged one by one either. */
  const quiet = new WeakSet<object>();
  /** What a handler adds to its audit event (the VM, the new key's fingerprint…). */
  const auditDetails = new WeakMap<object, Record<string, unknown>>();
  const caller = (request: object): TokenRecord => callers.get(request)!;
  const note = (request: object, details: Record<string, unknown>): void => void auditDetails.set(request, { ...auditDetails.get(request), ...details });

  // Authentication runs before the body is read, so unauthenticated clients cannot make the relay parse anything.
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || request.url.startsWith('/healthz?')) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(header);
    const token = match && (await deps.store.findToken(hashToken(match[1]!)));
    if (!token) {
      deps.metrics?.authFailed('bearer');
      // An address that keeps guessing tokens waits longer and longer for each refusal.
      const delay = header ? (deps.failures?.fail(request.ip) ?? 0) : 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay).unref());
      const missing = /^(Bearer\s*)?$/i.test(header.trim());
      throw new RelayError(401, 'Unauthorized', missing ? 'the bearer token is missing: send Authorization: Bearer <token> (the admin token is in <dataDir>/admin.token)' : 'the bearer token is not valid for this relay');
    }
    const at = now();
    if (token.expiresAt !== undefined && token.expiresAt <= at) {
      throw new RelayError(401, 'Unauthorized', `the token "${token.name}" expired at ${iso(token.expiresAt)}; ask for a new one`);
    }
    if (deps.connectionLimits && !deps.connectionLimits.charge(request.raw.socket, token.id, token.name)) {
      void reply.header('Connection', 'close');
      throw new RelayError(429, 'TooManyConnections', `the token "${token.name}" holds ${deps.connectionLimits.perToken} API connections already (api.maxConnectionsPerToken); reuse them (keep-alive) or close some`);
    }
    callers.set(request, token);
    pending.get(connectionKey(request.raw.socket))?.passed();
    if (token.lastUsedAt === undefined || at - token.lastUsedAt >= TOUCH_INTERVAL_MS) await deps.store.touchToken(token.id, at);
  });

  // A known path with another method: 405 with Allow, in the documented shape, before any body is read.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    const path = request.url.split('?')[0]!;
    const allowed = [...new Set(routeMethods.filter((route) => route.pattern.test(path)).map((route) => route.method))];
    if (allowed.length === 0) return;
    void reply.header('Allow', allowed.join(', '));
    throw new RelayError(405, 'MethodNotAllowed', `${request.method} is not allowed on ${path.slice(0, 200)}; it takes ${allowed.join(', ')}`);
  });

  // Authorization, also before the body is read: the route's scope, then (for /virtualMachines/{vm}/…) the token's VM globs.
  // A VM outside the globs is refused whether or not it exists, so a limited token learns no other VM's name.
  app.addHook('onRequest', async (request) => {
    const token = callers.get(request);
    const access = request.routeOptions.config?.access;
    if (!token || !access) return;
    if (access.scope && !hasScope(token, access.scope)) {
      throw new RelayError(403, 'Forbidden', `the token "${token.name}" lacks the scope "${access.scope}" this needs (it has: ${token.scopes.join(', ')})`);
    }
    const vm = (request.params as { vm?: unknown } | undefined)?.vm;
    if (typeof vm === 'string' && !vmAllowed(token, vm)) {
      throw new RelayError(403, 'Forbidden', `the token "${token.name}" is limited to ${describeVmLimit(token)}; "${vm.slice(0, 63)}" is not one of them`);
    }
    // A change the audit trail cannot record is refused before it is made.
    if (access.audit && !deps.audit.healthy) {
      try {
        deps.audit.append({ type: 'audit.resumed' });
      } catch {
        throw new RelayError(503, 'AuditUnavailable', 'the relay cannot write its audit trail (disk full or read-only?), so it makes no changes; see its log');
      }
    }
  });

  // Requests by route (the pattern, never the VM name: bounded label values) and status, with latency.
  // Logged: changes and refusals at info (a refusal only when it went to the trail, so a flood logs as little as
  // it records), the rest at debug.
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    deps.metrics?.apiRequest(request.routeOptions.url ?? 'unmatched', request.method, status, reply.elapsedTime / 1000);
    if (quiet.has(request)) return;
    const entry = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status, ms: Math.round(reply.elapsedTime), token: callers.get(request)?.name, remote: request.ip };
    if (status >= 400 || request.routeOptions.config?.access?.audit) request.log.info(entry, 'request');
    else request.log.debug(entry, 'request');
  });

  // Every change, and every refusal, is on disk in the audit trail before the client hears of it.
  app.addHook('onSend', async (request, reply, payload) => {
    const token = callers.get(request);
    const access = request.routeOptions.config?.access;
    if (!token || !access) return payload;
    const status = reply.statusCode;
    if (!access.audit && status !== 403) return payload;
    let code: string | undefined;
    if (status >= 400 && typeof payload === 'string') {
      try {
        code = (JSON.parse(payload) as { error?: { code?: string } }).error?.code;
      } catch {
        // Not ours; the status says enough.
      }
    }
    const params = (request.params ?? {}) as Record<string, string>;
    const event: AuditEventInput = {
      type: 'api',
      action: access.audit ?? 'access.denied',
      actor: { tokenId: token.id, tokenName: token.name },
      remoteAddress: request.ip,
      request: { method: request.method, path: request.url.split('?')[0]!.slice(0, 300) },
      ...(params.vm !== undefined && { virtualMachine: params.vm }),
      ...auditDetails.get(request),
      result: { status, ...(code && { code }) },
    };
    try {
      if (status >= 400 && deps.refusals) {
        // One line per kind of refusal and window, capped per token and per address (refusal-recorder.ts).
        const kind = JSON.stringify([event.action, token.id, request.ip, event.request, status, code]);
        if (!deps.refusals.record(event, kind, [`token:${token.id}`, `address:${request.ip}`])) quiet.add(request);
      } else {
        deps.audit.append(event);
      }
    } catch (error) {
      request.log.error({ err: (error as Error).message }, 'cannot write the audit trail');
      void reply.code(503).header('content-type', 'application/json; charset=utf-8');
      const applied = status < 300 ? 'The change was made but is not in the audit trail; ' : '';
      return JSON.stringify({ error: { code: 'AuditUnavailable', message: `${applied}the relay cannot write its audit trail (disk full or read-only?); see its log` } });
    }
    return payload;
  });

  const errors = { 400: S.ErrorBody, 401: S.ErrorBody, 403: S.ErrorBody, 404: S.ErrorBody, 405: S.ErrorBody, 409: S.ErrorBody, 413: S.ErrorBody, 415: S.ErrorBody, 422: S.ErrorBody, 503: S.ErrorBody };
  const access = (routeAccess: RouteAccess): { config: { access: RouteAccess } } => ({ config: { access: routeAccess } });

  const vmResource = (vm: VirtualMachine, record: ConsoleRecord | undefined): S.VirtualMachineResource => ({
    name: vm.name,
    powerState: vm.powerState,
    consoleTypes: vm.consoleTypes,
    powerActions: vm.powerActions,
    serialBreak: vm.serialBreak,
    source: vm.source,
    ...(record && { console: consoleResource(record, now()) }),
  });

  const requireVm = (name: string): VirtualMachine => {
    const vm = deps.virtualMachines.get(name);
    if (!vm) throw new RelayError(404, 'VirtualMachineNotFound', `no virtual machine named "${name}" is known to this relay; list them with GET /v1/virtualMachines`);
    return vm;
  };

  app.get('/healthz', { schema: { response: { 200: S.Health, 503: S.Health } } }, async (_request, reply) => {
    const store = await deps.store.ping().catch(() => false);
    const listeners = deps.endpoints.healthy;
    return reply.status(store && listeners ? 200 : 503).send({ status: store && listeners ? 'ok' : 'unhealthy', store, listeners });
  });

  app.get('/v1/relay', { ...access({}), schema: { response: { 200: S.RelayInfo, ...errors } } }, async (request) => {
    const { lastUsedAt: _lastUsed, ...self } = tokenResource(caller(request));
    return { ...deps.relayInfo(), endpoints: deps.endpoints.list(), caller: self };
  });

  app.get('/v1/virtualMachines', { ...access({ scope: 'consoles:read' }), schema: { response: { 200: S.VirtualMachineList, ...errors } } }, async (request) => {
    const consoles = await deps.consoles.list();
    const token = caller(request);
    return { value: deps.virtualMachines.list().filter((vm) => vmAllowed(token, vm.name)).map((vm) => vmResource(vm, consoles.get(vm.name))) };
  });

  app.get<{ Params: { vm: string } }>('/v1/virtualMachines/:vm', { ...access({ scope: 'consoles:read' }), schema: { params: S.VmParams, response: { 200: S.VirtualMachineResource, ...errors } } }, async (request) => {
    const vm = requireVm(request.params.vm);
    return vmResource(vm, await deps.store.getConsole(vm.name));
  });

  app.get<{ Params: { vm: string } }>('/v1/virtualMachines/:vm/console', { ...access({ scope: 'consoles:read' }), schema: { params: S.VmParams, response: { 200: S.ConsoleResource, ...errors } } }, async (request) =>
    consoleResource(await deps.consoles.get(request.params.vm), now()),
  );

  app.put<{ Params: { vm: string }; Body: S.ConsolePutBody }>(
    '/v1/virtualMachines/:vm/console',
    { ...access({ scope: 'consoles:write', audit: 'console.put' }), schema: { params: S.VmParams, body: S.ConsolePutBody, response: { 200: S.ConsoleResource, 201: S.ConsoleResource, ...errors } } },
    async (request, reply) => {
      const { record, created } = await deps.consoles.put(request.params.vm, request.body);
      note(request, { console: consoleSummary(record, created) });
      return reply.status(created ? 201 : 200).send(consoleResource(record, now()));
    },
  );

  app.patch<{ Params: { vm: string }; Body: S.ConsolePatchBody }>(
    '/v1/virtualMachines/:vm/console',
    { ...access({ scope: 'consoles:write', audit: 'console.patch' }), schema: { params: S.VmParams, body: S.ConsolePatchBody, response: { 200: S.ConsoleResource, ...errors } } },
    async (request) => {
      const record = await deps.consoles.patch(request.params.vm, request.body);
      note(request, { console: consoleSummary(record, false), changed: Object.keys(request.body) });
      return consoleResource(record, now());
    },
  );

  app.delete<{ Params: { vm: string } }>('/v1/virtualMachines/:vm/console', { ...access({ scope: 'consoles:write', audit: 'console.delete' }), schema: { params: S.VmParams, response: errors } }, async (request, reply) => {
    await deps.consoles.delete(request.params.vm);
    return reply.status(204).send();
  });

  app.post<{ Params: { vm: string }; Body: S.PowerActionBody }>(
    '/v1/virtualMachines/:vm/powerActions',
    { ...access({ scope: 'power', audit: 'power.action' }), schema: { params: S.VmParams, body: S.PowerActionBody, response: { 202: S.PowerActionAccepted, ...errors } } },
    async (request, reply) => {
      const vm = requireVm(request.params.vm);
      const { action } = request.body;
      note(request, { powerAction: action });
      try {
        await vm.power(action);
      } catch (error) {
        if (!(error instanceof PowerActionError)) throw error;
        request.log.warn({ vm: vm.name, action, token: caller(request).name, err: error.message }, 'power action refused');
        throw new RelayError(409, error.code, error.message);
      }
      request.log.info({ vm: vm.name, action, token: caller(request).name }, 'power action');
      return reply.status(202).send({ virtualMachine: vm.name, action, status: 'Accepted' as const });
    },
  );

  app.post<{ Params: { vm: string }; Querystring: { endpoint?: string } }>(
    '/v1/virtualMachines/:vm/vncTokens',
    { ...access({ scope: 'vnc', audit: 'vncToken.create' }), schema: { params: S.VmParams, querystring: S.VncTokenQuery, response: { 201: S.VncToken, ...errors } } },
    async (request, reply) => {
      const vm = requireVm(request.params.vm);
      if (!vm.consoleTypes.includes('vnc')) {
        throw new RelayError(409, 'ConsoleTypeNotAvailable', `${vm.name} has no VNC console configured (consoleTypes: ${vm.consoleTypes.join(', ')})`);
      }
      // A token for a screen that is not there would only end in "the connection was refused or lost".
      const unavailable = vm.vncUnavailable;
      if (unavailable) throw new RelayError(409, 'VirtualMachineNotRunning', unavailable);
      const record = await deps.consoles.get(vm.name);
      const status = detailedStatus(record, now());
      if (status === 'Disabled') throw new RelayError(409, 'ConsoleDisabled', `the console for ${vm.name} is disabled; enable it with PATCH {"enabled": true} first`);
      if (status === 'Expired') throw new RelayError(409, 'ConsoleExpired', `the console for ${vm.name} expired; renew it with PATCH {"expiration": …} first`);
      const endpointName = request.query.endpoint ?? 'default';
      const endpoint = deps.endpoints.get(endpointName);
      if (endpoint.provisioningState !== 'Succeeded') {
        throw new RelayError(409, 'EndpointNotReady', `the endpoint "${endpointName}" is not listening; see the relay log`);
      }
      note(request, { endpoint: endpointName });
      const minter = caller(request);
      const grant = { virtualMachine: vm.name, accessId: record.accessId, keyFingerprint: record.keyFingerprint, mintedBy: { tokenId: minter.id, tokenName: minter.name } };
      const { token, expiresAt } = deps.vncTokens.mint(grant, endpointName);
      return reply.status(201).send({
        token,
        url: `${deps.https ? 'https' : 'http'}://${hostForUrl(endpoint.advertiseAddress)}:${endpoint.vncPort}/?token=${token}`,
        expiresAt: iso(expiresAt),
        virtualMachine: vm.name,
        endpoint: endpointName,
      });
    },
  );

  // Where to connect is not a secret from any token holder (GET /v1/relay lists the endpoints too).
  app.get('/v1/privateEndpoints', { ...access({}), schema: { response: { 200: S.EndpointList, ...errors } } }, async () => ({ value: deps.endpoints.list() }));

  app.get<{ Params: { name: string } }>('/v1/privateEndpoints/:name', { ...access({}), schema: { params: S.EndpointParams, response: { 200: S.EndpointResource, ...errors } } }, async (request) =>
    deps.endpoints.get(request.params.name),
  );

  app.put<{ Params: { name: string }; Body: S.EndpointPutBody }>(
    '/v1/privateEndpoints/:name',
    { ...access({ scope: 'endpoints', audit: 'endpoint.put' }), schema: { params: S.EndpointParams, body: S.EndpointPutBody, response: { 200: S.EndpointResource, 201: S.EndpointResource, ...errors } } },
    async (request, reply) => {
      note(request, { endpoint: request.params.name });
      const { view, created } = await deps.endpoints.put(request.params.name, request.body);
      note(request, { ipAddress: view.ipAddress, allowedSourcePrefixes: view.allowedSourcePrefixes, created });
      return reply.status(created ? 201 : 200).send(view);
    },
  );

  app.delete<{ Params: { name: string } }>('/v1/privateEndpoints/:name', { ...access({ scope: 'endpoints', audit: 'endpoint.delete' }), schema: { params: S.EndpointParams, response: errors } }, async (request, reply) => {
    note(request, { endpoint: request.params.name });
    await deps.endpoints.delete(request.params.name);
    return reply.status(204).send();
  });

  app.get('/v1/sessions', { ...access({ scope: 'sessions' }), schema: { response: { 200: S.SessionList, ...errors } } }, async (request) => {
    const token = caller(request);
    return { value: deps.supervisor.sessions.list().filter((session) => vmAllowed(token, session.virtualMachine)).map(sessionResource) };
  });

  app.delete<{ Params: { id: string } }>('/v1/sessions/:id', { ...access({ scope: 'sessions', audit: 'session.close' }), schema: { params: S.SessionParams, response: errors } }, async (request, reply) => {
    const session = deps.supervisor.sessions.get(request.params.id);
    // Another VM's session is as unknown to a limited token as one that does not exist.
    if (!session || !vmAllowed(caller(request), session.virtualMachine)) {
      throw new RelayError(404, 'SessionNotFound', `no live session with id "${request.params.id.slice(0, 64)}"; list them with GET /v1/sessions`);
    }
    note(request, { session: session.id, virtualMachine: session.virtualMachine });
    deps.supervisor.closeSession(session.id, { code: 'closed-by-admin', message: 'closed by an administrator' });
    return reply.status(204).send();
  });

  // A token limited to some VMs sees the relay-wide series and only its own VMs' series.
  app.get('/metrics', { ...access({ scope: 'metrics' }) }, async (request, reply) => {
    const token = caller(request);
    const text = (await deps.metrics?.render(token.virtualMachines === undefined ? undefined : (vm) => vmAllowed(token, vm))) ?? '';
    return reply.header('content-type', deps.metrics?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8').send(text);
  });

  app.post<{ Body: S.TokenCreateBody }>(
    '/v1/tokens',
    { ...access({ scope: 'admin', audit: 'token.create' }), schema: { body: S.TokenCreateBody, response: { 201: S.TokenCreated, ...errors } } },
    async (request, reply) => {
      const { name, scopes, virtualMachines, expiresAt } = request.body;
      note(request, { token: { name, scopes, ...(virtualMachines && { virtualMachines }) } });
      if (scopes.includes('admin') && virtualMachines) {
        throw new RelayError(400, 'ValidationFailed', 'an admin token cannot be limited to some VMs (it could grant itself the rest); drop "virtualMachines" or the "admin" scope');
      }
      const shared = scopes.filter((scope) => SHARED_SCOPES.includes(scope));
      if (shared.length > 0 && virtualMachines) {
        throw new RelayError(
          400,
          'ValidationFailed',
          `a token limited to some VMs cannot have the scope "${shared.join('", "')}": private endpoints carry every VM's sessions, so deleting one would close other VMs' sessions; drop "virtualMachines" or that scope`,
        );
      }
      let expires: number | undefined;
      if (expiresAt !== undefined) {
        expires = parseRfc3339(expiresAt);
        if (expires === undefined) throw new RelayError(400, 'ValidationFailed', `expiresAt "${expiresAt.slice(0, 64)}" is not an RFC 3339 timestamp with a time zone, e.g. 2026-12-31T00:00:00Z`);
        if (expires <= now()) throw new RelayError(400, 'ValidationFailed', 'expiresAt must be in the future');
      }
      const secret = newApiToken();
      const record: TokenRecord = {
        id: randomUUID(),
        hash: hashToken(secret),
        name,
        prefix: tokenPrefix(secret),
        scopes: [...scopes],
        ...(virtualMachines && { virtualMachines: [...virtualMachines] }),
        createdAt: now(),
        ...(expires !== undefined && { expiresAt: expires }),
      };
      if (!(await deps.store.createToken(record))) {
        throw new RelayError(409, 'TokenNameTaken', `a token named "${name}" exists; choose another name or delete it first (GET /v1/tokens)`);
      }
      note(request, { token: { id: record.id, name, prefix: record.prefix, scopes, ...(virtualMachines && { virtualMachines }) } });
      request.log.info({ token: name, id: record.id, scopes, by: caller(request).name }, 'API token created');
      return reply.status(201).send({ ...tokenResource(record), token: secret });
    },
  );

  app.get('/v1/tokens', { ...access({ scope: 'admin' }), schema: { response: { 200: S.TokenList, ...errors } } }, async () => ({
    value: (await deps.store.listTokens()).map(tokenResource),
  }));

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', { ...access({ scope: 'admin', audit: 'token.delete' }), schema: { params: S.TokenParams, response: errors } }, async (request, reply) => {
    const tokens = await deps.store.listTokens();
    const target = tokens.find((token) => token.id === request.params.id);
    if (!target) throw new RelayError(404, 'TokenNotFound', `no API token with id "${request.params.id}"; list them with GET /v1/tokens`);
    note(request, { token: { id: target.id, name: target.name } });
    const admins = tokens.filter((token) => token.scopes.includes('admin') && (token.expiresAt === undefined || token.expiresAt > now()));
    if (target.scopes.includes('admin') && admins.length === 1 && admins[0]!.id === target.id) {
      throw new RelayError(409, 'LastAdminToken', `"${target.name}" is the last admin token; create another admin token before deleting it`);
    }
    await deps.store.deleteToken(target.id);
    request.log.info({ token: target.name, id: target.id, by: caller(request).name }, 'API token deleted');
    return reply.status(204).send();
  });

  app.get<{ Querystring: S.AuditQuery }>('/v1/auditEvents', { ...access({ scope: 'audit' }), schema: { querystring: S.AuditQuery, response: { 200: S.AuditEventList, ...errors } } }, async (request) => {
    const { since, vm } = request.query;
    const afterSeq = request.query.afterSeq === undefined ? undefined : Number(request.query.afterSeq);
    const limit = Number(request.query.limit ?? 100);
    if (limit < 1 || limit > 1000) throw new RelayError(400, 'ValidationFailed', 'limit must be from 1 to 1000');
    let sinceMs: number | undefined;
    if (since !== undefined) {
      sinceMs = parseRfc3339(since);
      if (sinceMs === undefined) throw new RelayError(400, 'ValidationFailed', `since "${since.slice(0, 64)}" is not an RFC 3339 timestamp with a time zone`);
    }
    const token = caller(request);
    if (vm !== undefined && !vmAllowed(token, vm)) throw new RelayError(403, 'Forbidden', `the token "${token.name}" is limited to ${describeVmLimit(token)}; "${vm}" is not one of them`);
    const limited = token.virtualMachines !== undefined;
    const match = (event: AuditEvent): boolean => {
      const eventVm = typeof event.virtualMachine === 'string' ? event.virtualMachine : undefined;
      if (vm !== undefined && eventVm !== vm) return false;
      // A token limited to some VMs sees only those VMs' events.
      return !limited || (eventVm !== undefined && vmAllowed(token, eventVm));
    };
    const { events, more } = await deps.audit.read({ since: sinceMs, afterSeq, match, limit });
    return { value: events, ...(more && events.length > 0 && { nextAfterSeq: events[events.length - 1]!.seq }) };
  });

  return app;
}
