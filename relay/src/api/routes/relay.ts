import type { FastifyPluginAsync } from 'fastify';
import { tokenResource } from '../resources.js';
import { access, callerOf, ERRORS, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** GET /healthz (no token), GET /v1/openapi.json and GET /v1/relay (any valid token). */
const relayRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  app.get('/healthz', { schema: { security: [], response: { 200: S.Health, 503: S.Health } } }, async (_request, reply) => {
    const store = await deps.store.ping().catch(() => false);
    const listeners = deps.endpoints.healthy;
    return reply.status(store && listeners ? 200 : 503).send({ status: store && listeners ? 'ok' : 'unhealthy', store, listeners });
  });

  // The API's OpenAPI 3.1 document, generated from the same schemas the routes validate with.
  app.get('/v1/openapi.json', { ...access({}), schema: { hide: true } }, async () => app.swagger());

  app.get('/v1/relay', { ...access({}), schema: { response: { 200: S.RelayInfo, ...ERRORS } } }, async (request) => {
    const { lastUsedAt: _lastUsed, ...self } = tokenResource(callerOf(request));
    return { ...deps.relayInfo(), endpoints: deps.endpoints.list(), caller: self };
  });
};

export default relayRoutes;
