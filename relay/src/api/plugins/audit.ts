import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { AuditEventInput } from '../../audit/audit-log.js';
import type { ApiPluginOptions } from '../route-kit.js';

/**
 * What every request leaves behind. Metrics: requests by route (the pattern, never the VM name:
 * bounded label values) and status, with latency. The log: changes and refusals at info (a
 * refusal only when it went to the trail, so a flood logs as little as it records), the rest at
 * debug. The audit trail: every change, and every refusal, is on disk before the client hears of
 * it; a trail that cannot be written turns the answer into a 503.
 */
const auditPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  app.decorateRequest('auditDetails', null);
  app.decorateRequest('auditQuiet', false);

  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    deps.metrics?.apiRequest(request.routeOptions.url ?? 'unmatched', request.method, status, reply.elapsedTime / 1000);
    if (request.auditQuiet) return;
    const entry = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status, ms: Math.round(reply.elapsedTime), token: request.caller?.name, remote: request.ip };
    if (status >= 400 || request.routeOptions.config?.access?.audit) request.log.info(entry, 'request');
    else request.log.debug(entry, 'request');
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const token = request.caller;
    const access = request.routeOptions.config?.access;
    if (!token || !access) return payload;
    const status = reply.statusCode;
    if (!access.audit && status !== 403) return payload;
    let code: string | undefined;
    if (status >= 400 && typeof payload === 'string') {
      try {
        code = (JSON.parse(payload) as { error?: { code?: string } }).error?.code;
      } catch {
        // Not ours; the status says enough.
      }
    }
    const params = (request.params ?? {}) as Record<string, string>;
    const event: AuditEventInput = {
      type: 'api',
      action: access.audit ?? 'access.denied',
      actor: { tokenId: token.id, tokenName: token.name },
      remoteAddress: request.ip,
      request: { method: request.method, path: request.url.split('?')[0]!.slice(0, 300) },
      ...(params.vm !== undefined && { virtualMachine: params.vm }),
      ...request.auditDetails,
      result: { status, ...(code && { code }) },
    };
    try {
      if (status >= 400 && deps.refusals) {
        // One line per kind of refusal and window, capped per token and per address (refusal-recorder.ts).
        const kind = JSON.stringify([event.action, token.id, request.ip, event.request, status, code]);
        if (!deps.refusals.record(event, kind, [`token:${token.id}`, `address:${request.ip}`])) request.auditQuiet = true;
      } else {
        await deps.audit.append(event);
      }
    } catch (error) {
      request.log.error({ err: (error as Error).message }, 'cannot write the audit trail');
      void reply.code(503).header('content-type', 'application/json; charset=utf-8');
      const applied = status < 300 ? 'The change was made but is not in the audit trail; ' : '';
      return JSON.stringify({ error: { code: 'AuditUnavailable', message: `${applied}the relay cannot write its audit trail (disk full or read-only?); see its log` } });
    }
    return payload;
  });
};

export default fp(auditPlugin, { name: 'lifeline-audit', fastify: '5.x', dependencies: ['lifeline-authentication'] });
