import type { Socket } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { ConnectionGate } from '../../endpoints/connection-gate.js';
import type { ApiPluginOptions } from '../route-kit.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** A connection made its first authenticated request: it leaves the pre-auth limits. */
    preauthPassed(socket: Socket): void;
  }
}

/**
 * Pre-authentication limits for API connections, through the connection gate: MaxStartups and a
 * grace time from the TCP accept until the first request with a valid token (the gate finds the
 * TLS socket Node's HTTPS server made by its TCP connection).
 */
const preauthPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { deps }) => {
  const gate = deps.preauth && new ConnectionGate({ startups: deps.preauth.startups, graceMs: deps.preauth.graceMs, metrics: deps.preauth.metrics, tlsByOtherServer: true });
  app.decorate('preauthPassed', (socket: Socket) => gate?.passed(socket));
  if (!gate) return;
  app.server.on('connection', (socket: Socket) => void gate.admit(socket));
};

export default fp(preauthPlugin, { name: 'lifeline-preauth', fastify: '5.x' });
