import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { RelayError } from '../relay-error.js';
import { describeVmLimit, hasScope, vmAllowed } from '../../core/scopes.js';
import { hashToken } from '../../core/token-hash.js';
import { iso } from '../resources.js';
import type { ApiPluginOptions } from '../route-kit.js';

/** Tokens use their `lastUsedAt` to the minute: at most one store write a minute per token. */
const TOUCH_INTERVAL_MS = 60_000;

/**
 * Authentication and authorization run before the body is read (an unauthenticated client cannot
 * make the relay parse anything). Authentication: the bearer token (slowed refusals for an address
 * that keeps guessing, expiry, the per-token connection cap); sets `request.caller`.
 */
const authenticationPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps, now }) => {
  app.decorateRequest('caller', null);

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
    request.caller = token;
    app.preauthPassed(request.raw.socket);
    if (token.lastUsedAt === undefined || at - token.lastUsedAt >= TOUCH_INTERVAL_MS) await deps.store.touchToken(token.id, at);
  });

};

/**
 * Authorization: registered after the 405 check (method-not-allowed.ts), so that a wrong method
 * is a 405, not a 403.
 */
const authorizationPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  // The route's scope, then (for /virtualMachines/{vm}/…) the token's VM globs. A VM outside the
  // globs is refused whether or not it exists, so a limited token learns no other VM's name.
  app.addHook('onRequest', async (request) => {
    const token = request.caller;
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
};

export const authentication = fp(authenticationPlugin, { name: 'lifeline-authentication', fastify: '5.x', dependencies: ['lifeline-preauth'] });
export const authorization = fp(authorizationPlugin, { name: 'lifeline-authorization', fastify: '5.x', dependencies: ['lifeline-authentication'] });
