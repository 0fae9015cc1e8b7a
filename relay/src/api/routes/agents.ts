import type { FastifyPluginAsync } from 'fastify';
import { parseRfc3339 } from '../../core/console-rules.js';
import { iso } from '../resources.js';
import { RelayError } from '../relay-error.js';
import { access, ERRORS, note, type ApiDependencies, type FleetApi, type ApiPluginOptions } from '../route-kit.js';
import * as F from '../fleet-schemas.js';

const DEFAULT_JOIN_TTL_MS = 3_600_000;
const MAX_JOIN_TTL_MS = 7 * 24 * 3_600_000;

function fleetOf(deps: ApiDependencies): FleetApi {
  if (!deps.fleet) throw new RelayError(409, 'NotAFleetGateway', 'this relay is standalone: hypervisor agents join a fleet gateway (role: gateway, docs/fleet.md)');
  return deps.fleet;
}

/** A fleet's hypervisor agents (admin scope to change them): join tokens, the list, deletion. */
const agentRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps, now }) => {
  app.post<{ Body: F.AgentJoinTokenBody }>(
    '/v1/agentJoinTokens',
    { ...access({ scope: 'admin', audit: 'agent.joinToken.create' }), schema: { body: F.AgentJoinTokenBody, response: { 201: F.AgentJoinToken, ...ERRORS } } },
    async (request, reply) => {
      const fleet = fleetOf(deps);
      const { agent, expiresAt } = request.body;
      note(request, { agent });
      let expires = now() + DEFAULT_JOIN_TTL_MS;
      if (expiresAt !== undefined) {
        const parsed = parseRfc3339(expiresAt);
        if (parsed === undefined) throw new RelayError(400, 'ValidationFailed', `expiresAt "${expiresAt.slice(0, 64)}" is not an RFC 3339 timestamp with a time zone, e.g. 2026-12-31T00:00:00Z`);
        if (parsed <= now()) throw new RelayError(400, 'ValidationFailed', 'expiresAt must be in the future');
        if (parsed - now() > MAX_JOIN_TTL_MS) throw new RelayError(400, 'ValidationFailed', `expiresAt is more than 7 days away; a join token lives at most until ${iso(now() + MAX_JOIN_TTL_MS)}`);
        expires = parsed;
      }
      const token = await fleet.createJoinToken(agent, expires);
      note(request, { expiresAt: iso(expires) });
      return reply.code(201).send({ agent, token, expiresAt: iso(expires), caFingerprint: fleet.caFingerprint });
    },
  );

  app.get('/v1/agents', { ...access({ scope: 'consoles:read' }), schema: { response: { 200: F.AgentList, ...ERRORS } } }, async () => ({
    value: deps.fleet ? await deps.fleet.listAgents() : [],
  }));

  app.delete<{ Params: { name: string } }>(
    '/v1/agents/:name',
    { ...access({ scope: 'admin', audit: 'agent.delete' }), schema: { params: F.AgentParams, response: ERRORS } },
    async (request, reply) => {
      const fleet = fleetOf(deps);
      note(request, { agent: request.params.name });
      if (!(await fleet.deleteAgent(request.params.name))) {
        throw new RelayError(404, 'AgentNotFound', `no agent named "${request.params.name}" is in the fleet; list them with GET /v1/agents`);
      }
      return reply.code(204).send();
    },
  );
};

export default agentRoutes;
