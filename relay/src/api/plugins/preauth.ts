import type { Socket } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { guardPreauth, type PreauthGuard } from '../../endpoints/preauth-guard.js';
import { connectionKey } from '../connection-limits.js';
import type { ApiPluginOptions } from '../route-kit.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** A connection made its first authenticated request: it leaves the pre-auth limits. */
    preauthPassed(socket: Socket): void;
  }
}

/**
 * Pre-authentication limits for API connections, from the TCP accept: MaxStartups and a grace
 * time until the first request with a valid token. TLS sockets are found by their TCP
 * connection's address and port, the same on the raw and the TLS socket.
 */
const preauthPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  const pending = new Map<string, PreauthGuard>();
  app.decorate('preauthPassed', (socket: Socket) => pending.get(connectionKey(socket))?.passed());
  if (!deps.preauth) return;
  const { startups, graceMs, metrics } = deps.preauth;
  app.server.on('connection', (socket: Socket) => {
    const guard = guardPreauth(socket, { startups, graceMs, metrics });
    if (!guard) return;
    const key = connectionKey(socket);
    pending.set(key, guard);
    socket.once('close', () => pending.delete(key));
  });
};

export default fp(preauthPlugin, { name: 'lifeline-preauth', fastify: '5.x' });
