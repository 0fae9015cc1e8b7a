import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { createLogger } from '../logger.js';
import { buildApi } from './app.js';

/** Only what GET /v1/virtualMachines and the auth hook touch; the shutdown path is what is tested. */
function apiWithEmptyRelay(): ReturnType<typeof buildApi> {
  return buildApi({
    store: { findToken: async () => ({ id: 't', hash: 'h', name: 'admin', prefix: '', scopes: ['admin'], createdAt: 0, lastUsedAt: Date.now() }) } as never,
    consoles: { list: async () => new Map() } as never,
    endpoints: { list: () => [] } as never,
    virtualMachines: { list: () => [] } as never,
    supervisor: {} as never,
    vncTokens: {} as never,
    relayInfo: () => ({}) as never,
    log: createLogger('silent'),
    audit: { healthy: true, append: () => undefined } as never,
  });
}

test('a request that arrives while the relay shuts down gets a 503 in the documented error shape', async () => {
  const app = await apiWithEmptyRelay();
  const request = 'GET /v1/virtualMachines HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer llt_0123456789abcdefghij\r\n\r\n';
  let received = '';
  let duringClose = '';
  const client: { socket?: ReturnType<typeof connect> } = {};
  // Sent on a kept-alive connection after close() began and before the listener stops.
  app.addHook('preClose', async () => {
    received = '';
    client.socket!.write(request);
    const deadline = Date.now() + 3000;
    while (!received.includes('}}') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    duringClose = received;
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const socket = connect({ host: '127.0.0.1', port: (app.server.address() as { port: number }).port });
  client.socket = socket;
  socket.on('data', (data: Buffer) => (received += data.toString()));
  socket.on('error', () => undefined);
  socket.write(request);
  const deadline = Date.now() + 3000;
  while (!received.includes('"value"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.match(received, /^HTTP\/1\.1 200 /);
  await app.close();
  socket.destroy();
  assert.match(duringClose, /^HTTP\/1\.1 503 /);
  assert.match(duringClose, /connection: close/i);
  const body = JSON.parse(duringClose.slice(duringClose.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'ServiceUnavailable');
  assert.match(body.error.message, /shutting down/);
});
