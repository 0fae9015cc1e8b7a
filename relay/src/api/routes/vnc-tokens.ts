import type { FastifyPluginAsync } from 'fastify';
import { detailedStatus, sharingOf } from '../../core/console-rules.js';
import { RelayError } from '../relay-error.js';
import { hostForUrl, iso } from '../resources.js';
import { access, callerOf, ERRORS, note, requireVm, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** POST /v1/virtualMachines/{vm}/vncTokens: a single-use token and URL for the VM's screen on an endpoint. */
const vncTokenRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps, now }) => {
  app.post<{ Params: { vm: string }; Querystring: { endpoint?: string; mode?: 'control' | 'observe' } }>(
    '/v1/virtualMachines/:vm/vncTokens',
    { ...access({ scope: 'vnc', audit: 'vncToken.create' }), schema: { params: S.VmParams, querystring: S.VncTokenQuery, response: { 201: S.VncToken, ...ERRORS } } },
    async (request, reply) => {
      const vm = requireVm(deps, request.params.vm);
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
      const observe = request.query.mode === 'observe';
      if (observe) {
        if (!sharingOf(record).allowObservers) throw new RelayError(409, 'ObserversNotAllowed', `the console of ${vm.name} does not allow observers; its owner can PATCH it with {"allowObservers": true}`);
      }
      note(request, { endpoint: endpointName, ...(observe && { mode: 'observe' }) });
      const minter = callerOf(request);
      const grant = { virtualMachine: vm.name, accessId: record.accessId, keyFingerprint: record.keyFingerprint, mintedBy: { tokenId: minter.id, tokenName: minter.name }, ...(observe && { mode: 'observe' as const }), ...(record.recording && { recording: record.recording }) };
      const { token, expiresAt } = await deps.vncTokens.mint(grant, endpointName);
      return reply.status(201).send({
        token,
        // The page reads mode=observe to label itself read-only; the relay enforces it whatever the page does.
        url: `${deps.https ? 'https' : 'http'}://${hostForUrl(endpoint.advertiseAddress)}:${endpoint.vncPort}/?token=${token}${observe ? '&mode=observe' : ''}`,
        expiresAt: iso(expiresAt),
        virtualMachine: vm.name,
        endpoint: endpointName,
        ...(observe && { mode: 'observe' as const }),
      });
    },
  );
};

export default vncTokenRoutes;
