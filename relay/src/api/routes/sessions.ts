import type { FastifyPluginAsync } from 'fastify';
import type { LiveSession } from '../../sessions/live-session.js';
import { RelayError } from '../relay-error.js';
import { vmAllowed } from '../../core/scopes.js';
import { sessionResource } from '../resources.js';
import { access, callerOf, ERRORS, note, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** Live console sessions: listed, and closed by an administrator. */
const sessionRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  app.get('/v1/sessions', { ...access({ scope: 'sessions' }), schema: { response: { 200: S.SessionList, ...ERRORS } } }, async (request) => {
    const token = callerOf(request);
    const { sharing } = deps.supervisor;
    const requestedBy = (session: LiveSession): string | undefined => (session.role === 'observer' ? undefined : sharing.requester(session.virtualMachine)?.id);
    const here = deps.supervisor.sessions.list().map((session) => ({ ...sessionResource(session, requestedBy(session)), ...(deps.fleet && { gateway: deps.fleet.gatewayName }) }));
    // A fleet gateway lists the fleet's sessions: its own and those the other gateways hold.
    const elsewhere = deps.fleet ? await deps.fleet.remoteSessions() : [];
    return { value: [...here, ...elsewhere].filter((session) => vmAllowed(token, session.virtualMachine)) };
  });

  app.delete<{ Params: { id: string } }>('/v1/sessions/:id', { ...access({ scope: 'sessions', audit: 'session.close' }), schema: { params: S.SessionParams, response: ERRORS } }, async (request, reply) => {
    const session = deps.supervisor.sessions.get(request.params.id);
    if (!session && deps.fleet) {
      // Held by another gateway: it is asked to close it (it tells its client the same reason).
      const remote = await deps.fleet.closeRemoteSession(request.params.id, (vm) => vmAllowed(callerOf(request), vm));
      if (remote) {
        note(request, { session: remote.id, virtualMachine: remote.virtualMachine, gateway: remote.gateway });
        return reply.status(204).send();
      }
    }
    // Another VM's session is as unknown to a limited token as one that does not exist.
    if (!session || !vmAllowed(callerOf(request), session.virtualMachine)) {
      throw new RelayError(404, 'SessionNotFound', `no live session with id "${request.params.id.slice(0, 64)}"; list them with GET /v1/sessions`);
    }
    note(request, { session: session.id, virtualMachine: session.virtualMachine });
    deps.supervisor.closeSession(session.id, { code: 'closed-by-admin', message: 'closed by an administrator' });
    return reply.status(204).send();
  });

  // Control taken by force (an operator with the sessions scope, with a reason): the observer becomes the controller, the controller an observer.
  app.post<{ Params: { id: string }; Body: S.ControlBody }>(
    '/v1/sessions/:id/control',
    { ...access({ scope: 'sessions', audit: 'session.control.force' }), schema: { params: S.SessionParams, body: S.ControlBody, response: { 200: S.SessionResource, ...ERRORS } } },
    async (request) => {
      const session = deps.supervisor.sessions.get(request.params.id);
      const caller = callerOf(request);
      if (!session || !vmAllowed(caller, session.virtualMachine)) {
        throw new RelayError(404, 'SessionNotFound', `no live session with id "${request.params.id.slice(0, 64)}" on this relay; list them with GET /v1/sessions`);
      }
      const shared = deps.supervisor.sharing.participants(session.virtualMachine).find((participant) => participant === session);
      if (!shared) throw new RelayError(409, 'NotSharable', `session ${session.id} is a ${session.kind} session without participants to change; control moves between a serial console's observers and its controller`);
      if (shared.role === 'controller') throw new RelayError(409, 'AlreadyController', `session ${session.id} has control of ${session.virtualMachine} already`);
      note(request, { session: session.id, virtualMachine: session.virtualMachine, reason: request.body.reason });
      deps.supervisor.sharing.transfer(shared, 'forced', { reason: request.body.reason, actor: { tokenId: caller.id, tokenName: caller.name } });
      return sessionResource(shared);
    },
  );
};

export default sessionRoutes;
