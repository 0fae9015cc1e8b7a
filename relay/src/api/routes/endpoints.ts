import type { FastifyPluginAsync } from 'fastify';
import { access, ERRORS, note, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** Private endpoints: where consoles are reached (readable by any token), created and removed with the endpoints scope. */
const endpointRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  // Where to connect is not a secret from any token holder (GET /v1/relay lists the endpoints too).
  app.get('/v1/privateEndpoints', { ...access({}), schema: { response: { 200: S.EndpointList, ...ERRORS } } }, async () => ({ value: deps.endpoints.list() }));

  app.get<{ Params: { name: string } }>(
    '/v1/privateEndpoints/:name',
    { ...access({}), schema: { params: S.EndpointParams, response: { 200: S.EndpointResource, ...ERRORS } } },
    async (request) => deps.endpoints.get(request.params.name),
  );

  app.put<{ Params: { name: string }; Body: S.EndpointPutBody }>(
    '/v1/privateEndpoints/:name',
    { ...access({ scope: 'endpoints', audit: 'endpoint.put' }), schema: { params: S.EndpointParams, body: S.EndpointPutBody, response: { 200: S.EndpointResource, 201: S.EndpointResource, ...ERRORS } } },
    async (request, reply) => {
      note(request, { endpoint: request.params.name });
      const { view, created } = await deps.endpoints.put(request.params.name, request.body);
      note(request, { ipAddress: view.ipAddress, allowedSourcePrefixes: view.allowedSourcePrefixes, created });
      return reply.status(created ? 201 : 200).send(view);
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/privateEndpoints/:name',
    { ...access({ scope: 'endpoints', audit: 'endpoint.delete' }), schema: { params: S.EndpointParams, response: ERRORS } },
    async (request, reply) => {
      note(request, { endpoint: request.params.name });
      await deps.endpoints.delete(request.params.name);
      return reply.status(204).send();
    },
  );
};

export default endpointRoutes;
