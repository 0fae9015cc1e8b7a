import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { newApiToken, tokenPrefix } from '../../admin-token.js';
import { parseRfc3339 } from '../../core/console-rules.js';
import { RelayError } from '../relay-error.js';
import { SHARED_SCOPES } from '../../core/scopes.js';
import { hashToken } from '../../core/token-hash.js';
import type { TokenRecord } from '../../store/store.js';
import { tokenResource } from '../resources.js';
import { access, callerOf, ERRORS, note, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** API tokens (admin scope): created (the secret shown once), listed, deleted (never the last admin token). */
const tokenRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps, now }) => {
  app.post<{ Body: S.TokenCreateBody }>(
    '/v1/tokens',
    { ...access({ scope: 'admin', audit: 'token.create' }), schema: { body: S.TokenCreateBody, response: { 201: S.TokenCreated, ...ERRORS } } },
    async (request, reply) => {
      const { name, scopes, virtualMachines, expiresAt } = request.body;
      note(request, { token: { name, scopes, ...(virtualMachines && { virtualMachines }) } });
      if (scopes.includes('admin') && virtualMachines) {
        throw new RelayError(400, 'ValidationFailed', 'an admin token cannot be limited to some VMs (it could grant itself the rest); drop "virtualMachines" or the "admin" scope');
      }
      const shared = scopes.filter((scope) => SHARED_SCOPES.includes(scope));
      if (shared.length > 0 && virtualMachines) {
        throw new RelayError(
          400,
          'ValidationFailed',
          `a token limited to some VMs cannot have the scope "${shared.join('", "')}": private endpoints carry every VM's sessions, so deleting one would close other VMs' sessions; drop "virtualMachines" or that scope`,
        );
      }
      let expires: number | undefined;
      if (expiresAt !== undefined) {
        expires = parseRfc3339(expiresAt);
        if (expires === undefined) throw new RelayError(400, 'ValidationFailed', `expiresAt "${expiresAt.slice(0, 64)}" is not an RFC 3339 timestamp with a time zone, e.g. 2026-12-31T00:00:00Z`);
        if (expires <= now()) throw new RelayError(400, 'ValidationFailed', 'expiresAt must be in the future');
      }
      const secret = newApiToken();
      const record: TokenRecord = {
        id: randomUUID(),
        hash: hashToken(secret),
        name,
        prefix: tokenPrefix(secret),
        scopes: [...scopes],
        ...(virtualMachines && { virtualMachines: [...virtualMachines] }),
        createdAt: now(),
        ...(expires !== undefined && { expiresAt: expires }),
      };
      if (!(await deps.store.createToken(record))) {
        throw new RelayError(409, 'TokenNameTaken', `a token named "${name}" exists; choose another name or delete it first (GET /v1/tokens)`);
      }
      note(request, { token: { id: record.id, name, prefix: record.prefix, scopes, ...(virtualMachines && { virtualMachines }) } });
      request.log.info({ token: name, id: record.id, scopes, by: callerOf(request).name }, 'API token created');
      return reply.status(201).send({ ...tokenResource(record), token: secret });
    },
  );

  app.get('/v1/tokens', { ...access({ scope: 'admin' }), schema: { response: { 200: S.TokenList, ...ERRORS } } }, async () => ({
    value: (await deps.store.listTokens()).map(tokenResource),
  }));

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', { ...access({ scope: 'admin', audit: 'token.delete' }), schema: { params: S.TokenParams, response: ERRORS } }, async (request, reply) => {
    const tokens = await deps.store.listTokens();
    const target = tokens.find((token) => token.id === request.params.id);
    if (!target) throw new RelayError(404, 'TokenNotFound', `no API token with id "${request.params.id}"; list them with GET /v1/tokens`);
    note(request, { token: { id: target.id, name: target.name } });
    const admins = tokens.filter((token) => token.scopes.includes('admin') && (token.expiresAt === undefined || token.expiresAt > now()));
    if (target.scopes.includes('admin') && admins.length === 1 && admins[0]!.id === target.id) {
      throw new RelayError(409, 'LastAdminToken', `"${target.name}" is the last admin token; create another admin token before deleting it`);
    }
    await deps.store.deleteToken(target.id);
    request.log.info({ token: target.name, id: target.id, by: callerOf(request).name }, 'API token deleted');
    return reply.status(204).send();
  });
};

export default tokenRoutes;
