import type { Duplex } from 'node:stream';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { PowerActionError, type VirtualMachine, type VirtualMachineRegistry } from '../backends/virtual-machines.js';
import { detailedStatus, type ConsoleRecord } from '../core/console-rules.js';
import { RelayError } from '../core/relay-error.js';
import { hashToken } from '../core/token-hash.js';
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
  relayInfo: () => Omit<S.RelayInfo, 'endpoints'>;
  log: Logger;
  now?: () => number;
  /** TLS material for the API; plain HTTP when absent. */
  https?: { cert: Buffer; key: Buffer };
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

/** Turns Ajv's first issue into a sentence that names the field. */
function describeValidation(issue: ValidationIssue, context: string): string {
  const field = `${context}${issue.instancePath.replace(/\//g, '.')}`.replace(/^body\./, '');
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
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }),
    bodyLimit: BODY_LIMIT_BYTES,
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
      const [status, text, code, message] =
        error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'RequestTimeout', 'the request took too long to arrive']
          : error.code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large', 'HeadersTooLarge', 'the request headers are too large']
            : [400, 'Bad Request', 'MalformedRequest', 'the request is not well-formed HTTP/1.1'];
      const body = JSON.stringify({ error: { code, message } });
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
    // Node would answer a missing Host header itself, with an empty body; the hook below answers it in our shape.
    http: { requireHostHeader: false },
    ...(deps.https ? { https: { ...deps.https, requireHostHeader: false } } : {}),
  }) as unknown as FastifyInstance;

  // JSON only: Fastify would otherwise hand text/plain bodies to the JSON schemas as strings.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof RelayError) {
      return reply.status(error.status).send({ error: { code: error.code, message: error.message } });
    }
    if (error.validation) {
      const issue = error.validation[0] as unknown as ValidationIssue;
      return reply.status(400).send({ error: { code: 'ValidationFailed', message: describeValidation(issue, error.validationContext ?? 'body') } });
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

  /** Which token each request came with (its name; never the token), for the log of what it did. */
  const tokenNames = new WeakMap<object, string>();

  // Authentication runs before the body is read, so unauthenticated clients cannot make the relay parse anything.
  app.addHook('onRequest', async (request) => {
    if (request.url === '/healthz' || request.url.startsWith('/healthz?')) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(header);
    const token = match && (await deps.store.findToken(hashToken(match[1]!)));
    if (!token) {
      throw new RelayError(401, 'Unauthorized', header ? 'the bearer token is not valid for this relay' : 'send Authorization: Bearer <token> (the admin token is in <dataDir>/admin.token)');
    }
    tokenNames.set(request, token.name);
  });

  const errors = { 400: S.ErrorBody, 401: S.ErrorBody, 404: S.ErrorBody, 409: S.ErrorBody, 413: S.ErrorBody, 415: S.ErrorBody, 422: S.ErrorBody };

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

  app.get('/v1/relay', { schema: { response: { 200: S.RelayInfo, ...errors } } }, async () => ({
    ...deps.relayInfo(),
    endpoints: deps.endpoints.list(),
  }));

  app.get('/v1/virtualMachines', { schema: { response: { 200: S.VirtualMachineList, ...errors } } }, async () => {
    const consoles = await deps.consoles.list();
    return { value: deps.virtualMachines.list().map((vm) => vmResource(vm, consoles.get(vm.name))) };
  });

  app.get<{ Params: { vm: string } }>('/v1/virtualMachines/:vm', { schema: { params: S.VmParams, response: { 200: S.VirtualMachineResource, ...errors } } }, async (request) => {
    const vm = requireVm(request.params.vm);
    return vmResource(vm, await deps.store.getConsole(vm.name));
  });

  app.get<{ Params: { vm: string } }>('/v1/virtualMachines/:vm/console', { schema: { params: S.VmParams, response: { 200: S.ConsoleResource, ...errors } } }, async (request) =>
    consoleResource(await deps.consoles.get(request.params.vm), now()),
  );

  app.put<{ Params: { vm: string }; Body: S.ConsolePutBody }>(
    '/v1/virtualMachines/:vm/console',
    { schema: { params: S.VmParams, body: S.ConsolePutBody, response: { 200: S.ConsoleResource, 201: S.ConsoleResource, ...errors } } },
    async (request, reply) => {
      const { record, created } = await deps.consoles.put(request.params.vm, request.body);
      return reply.status(created ? 201 : 200).send(consoleResource(record, now()));
    },
  );

  app.patch<{ Params: { vm: string }; Body: S.ConsolePatchBody }>(
    '/v1/virtualMachines/:vm/console',
    { schema: { params: S.VmParams, body: S.ConsolePatchBody, response: { 200: S.ConsoleResource, ...errors } } },
    async (request) => consoleResource(await deps.consoles.patch(request.params.vm, request.body), now()),
  );

  app.delete<{ Params: { vm: string } }>('/v1/virtualMachines/:vm/console', { schema: { params: S.VmParams, response: errors } }, async (request, reply) => {
    await deps.consoles.delete(request.params.vm);
    return reply.status(204).send();
  });

  app.post<{ Params: { vm: string }; Body: S.PowerActionBody }>(
    '/v1/virtualMachines/:vm/powerActions',
    { schema: { params: S.VmParams, body: S.PowerActionBody, response: { 202: S.PowerActionAccepted, ...errors } } },
    async (request, reply) => {
      const vm = requireVm(request.params.vm);
      const { action } = request.body;
      try {
        await vm.power(action);
      } catch (error) {
        if (!(error instanceof PowerActionError)) throw error;
        request.log.warn({ vm: vm.name, action, token: tokenNames.get(request), err: error.message }, 'power action refused');
        throw new RelayError(409, error.code, error.message);
      }
      request.log.info({ vm: vm.name, action, token: tokenNames.get(request) }, 'power action');
      return reply.status(202).send({ virtualMachine: vm.name, action, status: 'Accepted' as const });
    },
  );

  app.post<{ Params: { vm: string }; Querystring: { endpoint?: string } }>(
    '/v1/virtualMachines/:vm/vncTokens',
    { schema: { params: S.VmParams, querystring: S.VncTokenQuery, response: { 201: S.VncToken, ...errors } } },
    async (request, reply) => {
      const vm = requireVm(request.params.vm);
      if (!vm.consoleTypes.includes('vnc')) {
        throw new RelayError(409, 'ConsoleTypeNotAvailable', `${vm.name} has no VNC console configured (consoleTypes: ${vm.consoleTypes.join(', ')})`);
      }
      const record = await deps.consoles.get(vm.name);
      const status = detailedStatus(record, now());
      if (status === 'Disabled') throw new RelayError(409, 'ConsoleDisabled', `the console for ${vm.name} is disabled; enable it with PATCH {"enabled": true} first`);
      if (status === 'Expired') throw new RelayError(409, 'ConsoleExpired', `the console for ${vm.name} expired; renew it with PATCH {"expiration": …} first`);
      const endpointName = request.query.endpoint ?? 'default';
      const endpoint = deps.endpoints.get(endpointName);
      if (endpoint.provisioningState !== 'Succeeded') {
        throw new RelayError(409, 'EndpointNotReady', `the endpoint "${endpointName}" is not listening; see the relay log`);
      }
      const { token, expiresAt } = deps.vncTokens.mint({ virtualMachine: vm.name, accessId: record.accessId, keyFingerprint: record.keyFingerprint }, endpointName);
      return reply.status(201).send({
        token,
        url: `http://${endpoint.ipAddress}:${endpoint.vncPort}/?token=${token}`,
        expiresAt: iso(expiresAt),
        virtualMachine: vm.name,
        endpoint: endpointName,
      });
    },
  );

  app.get('/v1/privateEndpoints', { schema: { response: { 200: S.EndpointList, ...errors } } }, async () => ({ value: deps.endpoints.list() }));

  app.get<{ Params: { name: string } }>('/v1/privateEndpoints/:name', { schema: { params: S.EndpointParams, response: { 200: S.EndpointResource, ...errors } } }, async (request) =>
    deps.endpoints.get(request.params.name),
  );

  app.put<{ Params: { name: string }; Body: S.EndpointPutBody }>(
    '/v1/privateEndpoints/:name',
    { schema: { params: S.EndpointParams, body: S.EndpointPutBody, response: { 200: S.EndpointResource, 201: S.EndpointResource, ...errors } } },
    async (request, reply) => {
      const { view, created } = await deps.endpoints.put(request.params.name, request.body);
      return reply.status(created ? 201 : 200).send(view);
    },
  );

  app.delete<{ Params: { name: string } }>('/v1/privateEndpoints/:name', { schema: { params: S.EndpointParams, response: errors } }, async (request, reply) => {
    await deps.endpoints.delete(request.params.name);
    return reply.status(204).send();
  });

  app.get('/v1/sessions', { schema: { response: { 200: S.SessionList, ...errors } } }, async () => ({
    value: deps.supervisor.sessions.list().map(sessionResource),
  }));

  app.delete<{ Params: { id: string } }>('/v1/sessions/:id', { schema: { params: S.SessionParams, response: errors } }, async (request, reply) => {
    if (!deps.supervisor.closeSession(request.params.id, 'closed by an administrator')) {
      throw new RelayError(404, 'SessionNotFound', `no live session with id "${request.params.id}"; list them with GET /v1/sessions`);
    }
    return reply.status(204).send();
  });

  return app;
}
