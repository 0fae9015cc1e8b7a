import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { RELAY_VERSION } from '../version.js';
import { answerPlaintextOn } from '../tls/tls-material.js';
import { lazyCompilers, type LazyCompilers } from './lazy-compilers.js';
import auditPlugin from './plugins/audit.js';
import { authentication, authorization } from './plugins/auth.js';
import errorsPlugin, { BODY_LIMIT_BYTES, clientErrorHandler, frameworkError } from './plugins/errors.js';
import methodNotAllowedPlugin from './plugins/method-not-allowed.js';
import preauthPlugin from './plugins/preauth.js';
import agentRoutes from './routes/agents.js';
import auditRoutes from './routes/audit.js';
import consoleRoutes from './routes/consoles.js';
import endpointRoutes from './routes/endpoints.js';
import metricsRoutes from './routes/metrics.js';
import relayRoutes from './routes/relay.js';
import sessionRoutes from './routes/sessions.js';
import tokenRoutes from './routes/tokens.js';
import virtualMachineRoutes from './routes/virtual-machines.js';
import vncTokenRoutes from './routes/vnc-tokens.js';
import recordingRoutes from './routes/recordings.js';
import type { ApiDependencies, ApiPluginOptions } from './route-kit.js';

export { BODY_LIMIT_BYTES } from './plugins/errors.js';
export type { ApiDependencies } from './route-kit.js';
export { consoleResource, tokenResource } from './resources.js';

/**
 * Builds the control API: Fastify with the relay's HTTP limits, then its plugins — errors (the
 * documented shape for every failure), pre-auth limits, authentication, 405s, authorization and
 * the audit trail, in that order (each runs before the body is read) — and one route module per
 * resource. It never listens: the relay's entry point does that; tests call `inject` on it.
 */
export async function buildApi(deps: ApiDependencies): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const compilers = lazyCompilers();
  /** Connections on which the HTTP parser handed Fastify a request (so Fastify answers it). */
  const answeredSockets = new WeakSet<object>();
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }),
    // Two log lines for every request let any token grow the log without bound; the audit plugin logs what matters.
    disableRequestLogging: true,
    bodyLimit: BODY_LIMIT_BYTES,
    // A request must arrive whole within 15 s (its headers within 10 s, below): slow-loris clients are let go.
    requestTimeout: 15_000,
    // Our own 503 (errors plugin) answers in the documented error shape; Fastify's would not.
    return503OnClosing: false,
    frameworkErrors: frameworkError,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Fastify's own compilers, each schema compiled on its first request instead of at every start (lazy-compilers.ts).
    schemaController: { compilersFactory: { buildValidator: compilers.buildValidator, buildSerializer: compilers.buildSerializer } },
    clientErrorHandler: clientErrorHandler(answeredSockets),
    // Node would answer a missing Host header itself, with an empty body; the errors plugin answers it in our shape.
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

  const options: ApiPluginOptions = { deps, now };
  // The OpenAPI document (GET /v1/openapi.json) is generated from the routes' own schemas.
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Lifeline relay control API', version: RELAY_VERSION, description: 'Console resources, private endpoints, VNC tokens, sessions, power actions, API tokens and the audit trail of one Lifeline relay. See docs/api.md.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token (llt_…); the admin token is in <dataDir>/admin.token' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(errorsPlugin, options);
  await app.register(preauthPlugin, options);
  await app.register(authentication, options);
  await app.register(methodNotAllowedPlugin);
  await app.register(authorization, options);
  await app.register(auditPlugin, options);
  for (const routes of [relayRoutes, virtualMachineRoutes, consoleRoutes, vncTokenRoutes, endpointRoutes, sessionRoutes, metricsRoutes, tokenRoutes, auditRoutes, agentRoutes, recordingRoutes]) {
    await app.register(routes, options);
  }
  schemaCompilers.set(app, compilers);
  return app;
}

const schemaCompilers = new WeakMap<FastifyInstance, LazyCompilers>();

/** Compiles every route schema the API has not compiled yet (for tests: a bad schema would otherwise fail its first request). */
export async function compileAllSchemas(app: FastifyInstance): Promise<number> {
  await app.ready();
  return schemaCompilers.get(app)?.compileAll() ?? 0;
}
