import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { RelayError } from '../relay-error.js';

/** A known path with another method: 405 with Allow, in the documented shape, before any body is read. */
const methodNotAllowedPlugin: FastifyPluginAsync = async (app) => {
  // Which methods each route pattern takes (HEAD comes with every GET).
  const routeMethods: Array<{ method: string; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}$`);
    for (const method of [route.method].flat()) routeMethods.push({ method, pattern });
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return;
    const path = request.url.split('?')[0]!;
    const allowed = [...new Set(routeMethods.filter((route) => route.pattern.test(path)).map((route) => route.method))];
    if (allowed.length === 0) return;
    void reply.header('Allow', allowed.join(', '));
    throw new RelayError(405, 'MethodNotAllowed', `${request.method} is not allowed on ${path.slice(0, 200)}; it takes ${allowed.join(', ')}`);
  });
};

export default fp(methodNotAllowedPlugin, { name: 'lifeline-method-not-allowed', fastify: '5.x' });
