import type { FastifyPluginAsync } from 'fastify';
import { consoleResource, consoleSummary } from '../resources.js';
import { access, ERRORS, note, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** A VM's Console resource: read, create or replace, change, delete. */
const consoleRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps, now }) => {
  app.get<{ Params: { vm: string } }>(
    '/v1/virtualMachines/:vm/console',
    { ...access({ scope: 'consoles:read' }), schema: { params: S.VmParams, response: { 200: S.ConsoleResource, ...ERRORS } } },
    async (request) => consoleResource(await deps.consoles.get(request.params.vm), now()),
  );

  app.put<{ Params: { vm: string }; Body: S.ConsolePutBody }>(
    '/v1/virtualMachines/:vm/console',
    { ...access({ scope: 'consoles:write', audit: 'console.put' }), schema: { params: S.VmParams, body: S.ConsolePutBody, response: { 200: S.ConsoleResource, 201: S.ConsoleResource, ...ERRORS } } },
    async (request, reply) => {
      const { record, created } = await deps.consoles.put(request.params.vm, request.body);
      note(request, { console: consoleSummary(record, created) });
      return reply.status(created ? 201 : 200).send(consoleResource(record, now()));
    },
  );

  app.patch<{ Params: { vm: string }; Body: S.ConsolePatchBody }>(
    '/v1/virtualMachines/:vm/console',
    { ...access({ scope: 'consoles:write', audit: 'console.patch' }), schema: { params: S.VmParams, body: S.ConsolePatchBody, response: { 200: S.ConsoleResource, ...ERRORS } } },
    async (request) => {
      const record = await deps.consoles.patch(request.params.vm, request.body);
      note(request, { console: consoleSummary(record, false), changed: Object.keys(request.body) });
      return consoleResource(record, now());
    },
  );

  app.delete<{ Params: { vm: string } }>(
    '/v1/virtualMachines/:vm/console',
    { ...access({ scope: 'consoles:write', audit: 'console.delete' }), schema: { params: S.VmParams, response: ERRORS } },
    async (request, reply) => {
      await deps.consoles.delete(request.params.vm);
      return reply.status(204).send();
    },
  );
};

export default consoleRoutes;
