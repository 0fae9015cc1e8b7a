import type { FastifyPluginAsync } from 'fastify';
import { vmAllowed } from '../../core/scopes.js';
import { access, callerOf, type ApiPluginOptions } from '../route-kit.js';

/** GET /metrics: Prometheus text. A token limited to some VMs sees the relay-wide series and only its own VMs' series. */
const metricsRoutes: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  app.get('/metrics', { ...access({ scope: 'metrics' }) }, async (request, reply) => {
    const token = callerOf(request);
    const text = (await deps.metrics?.render(token.virtualMachines === undefined ? undefined : (vm) => vmAllowed(token, vm))) ?? '';
    return reply.header('content-type', deps.metrics?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8').send(text);
  });
};

export default metricsRoutes;
