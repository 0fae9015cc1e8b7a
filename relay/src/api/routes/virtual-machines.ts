import type { FastifyPluginAsync } from 'fastify';
import { RelayError } from '../relay-error.js';
import { vmAllowed } from '../../core/scopes.js';
import { PowerActionError } from '../../sessions/console-seam.js';
import { vmResource } from '../resources.js';
import { access, callerOf, ERRORS, note, requireVm, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** The VMs a token may see, one VM, and its power actions. */
const virtualMachineRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps, now }) => {
  app.get('/v1/virtualMachines', { ...access({ scope: 'consoles:read' }), schema: { response: { 200: S.VirtualMachineList, ...ERRORS } } }, async (request) => {
    const consoles = await deps.consoles.list();
    const token = callerOf(request);
    return { value: deps.virtualMachines.list().filter((vm) => vmAllowed(token, vm.name)).map((vm) => vmResource(vm, consoles.get(vm.name), now())) };
  });

  app.get<{ Params: { vm: string } }>(
    '/v1/virtualMachines/:vm',
    { ...access({ scope: 'consoles:read' }), schema: { params: S.VmParams, response: { 200: S.VirtualMachineResource, ...ERRORS } } },
    async (request) => {
      const vm = requireVm(deps, request.params.vm);
      return vmResource(vm, await deps.store.getConsole(vm.name), now());
    },
  );

  app.post<{ Params: { vm: string }; Body: S.PowerActionBody }>(
    '/v1/virtualMachines/:vm/powerActions',
    { ...access({ scope: 'power', audit: 'power.action' }), schema: { params: S.VmParams, body: S.PowerActionBody, response: { 202: S.PowerActionAccepted, ...ERRORS } } },
    async (request, reply) => {
      const vm = requireVm(deps, request.params.vm);
      const { action } = request.body;
      note(request, { powerAction: action });
      try {
        await vm.power(action);
        deps.supervisor.sharing.recorder?.marker(vm.name, `power ${action}`);
      } catch (error) {
        if (!(error instanceof PowerActionError)) throw error;
        request.log.warn({ vm: vm.name, action, token: callerOf(request).name, err: error.message }, 'power action refused');
        throw new RelayError(409, error.code, error.message);
      }
      request.log.info({ vm: vm.name, action, token: callerOf(request).name }, 'power action');
      return reply.status(202).send({ virtualMachine: vm.name, action, status: 'Accepted' as const });
    },
  );
};

export default virtualMachineRoutes;
