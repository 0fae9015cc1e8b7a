import type { FastifyPluginAsync } from 'fastify';
import type { AuditEvent } from '../../audit/audit-log.js';
import { parseRfc3339 } from '../../core/console-rules.js';
import { RelayError } from '../relay-error.js';
import { describeVmLimit, vmAllowed } from '../../core/scopes.js';
import { access, callerOf, ERRORS, type ApiPluginOptions } from '../route-kit.js';
import * as S from '../schemas.js';

/** GET /v1/auditEvents: the trail, oldest first, paged by `afterSeq`; a VM-limited token sees only its VMs' events. */
const auditRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  app.get<{ Querystring: S.AuditQuery }>('/v1/auditEvents', { ...access({ scope: 'audit' }), schema: { querystring: S.AuditQuery, response: { 200: S.AuditEventList, ...ERRORS } } }, async (request) => {
    const { since, vm } = request.query;
    const afterSeq = request.query.afterSeq === undefined ? undefined : Number(request.query.afterSeq);
    const limit = Number(request.query.limit ?? 100);
    if (limit < 1 || limit > 1000) throw new RelayError(400, 'ValidationFailed', 'limit must be from 1 to 1000');
    let sinceMs: number | undefined;
    if (since !== undefined) {
      sinceMs = parseRfc3339(since);
      if (sinceMs === undefined) throw new RelayError(400, 'ValidationFailed', `since "${since.slice(0, 64)}" is not an RFC 3339 timestamp with a time zone`);
    }
    const token = callerOf(request);
    if (vm !== undefined && !vmAllowed(token, vm)) throw new RelayError(403, 'Forbidden', `the token "${token.name}" is limited to ${describeVmLimit(token)}; "${vm}" is not one of them`);
    const limited = token.virtualMachines !== undefined;
    const match = (event: AuditEvent): boolean => {
      const eventVm = typeof event.virtualMachine === 'string' ? event.virtualMachine : undefined;
      if (vm !== undefined && eventVm !== vm) return false;
      // A token limited to some VMs sees only those VMs' events.
      return !limited || (eventVm !== undefined && vmAllowed(token, eventVm));
    };
    const { events, more } = await deps.audit.read({ since: sinceMs, afterSeq, match, limit });
    return { value: events, ...(more && events.length > 0 && { nextAfterSeq: events[events.length - 1]!.seq }) };
  });
};

export default auditRoutes;
