import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { generateEd25519 } from './host-key.js';
import { channelRefusals, OPEN_FAILURE, routeBreakRequests, sendSshBreak, sendAuthBanner, socketOf, SSH2_VERSION, type BreakListener } from './ssh2-internals.js';

/*
 * The ssh2 internals the relay and the desktop use, against the installed ssh2: a real server and
 * client in this process. Pinned: an ssh2 upgrade fails the first test until each use below is
 * checked against the new version and SSH2_VERSION is raised.
 */
test(`the installed ssh2 is the one these internals were written for (${SSH2_VERSION})`, () => {
  const installed = (createRequire(import.meta.url)('ssh2/package.json') as { version: string }).version;
  assert.equal(installed, SSH2_VERSION, `ssh2 ${installed} is installed: check socketOf, routeBreakRequests and sendSshBreak against it, then raise SSH2_VERSION`);
});

test('socketOf finds the TCP socket under a server connection; a break request reaches the session and its answer the client; a refused channel carries its reason', async () => {
  const hostKey = generateEd25519().private;
  const seen: Array<{ socket: Socket | undefined; routed: boolean; banner: boolean }> = [];
  const banners: string[] = [];
  const breaks: number[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (connection) => {
    seen.push({ socket: socketOf(connection), routed: routeBreakRequests(connection), banner: false });
    // A banner sent during authentication (here, before accepting the password).
    connection.on('authentication', (context) => {
      if (context.method === 'none') return context.reject(['password']);
      seen[0]!.banner = sendAuthBanner(connection, '[lifeline] a notice for this connection');
      context.accept();
    });
    const refuse = channelRefusals(connection);
    connection.on('tcpip', (_accept, reject) => refuse(reject, OPEN_FAILURE.administrativelyProhibited, 'only vnc:5900 is forwarded'));
    let sessions = 0;
    connection.on('session', (accept) => {
      const session = accept();
      // The first session answers breaks (sent), the second has no break listener (refused).
      const first = sessions++ === 0;
      session.on('pty', (acceptPty) => acceptPty());
      session.on('shell', (acceptShell) => {
        acceptShell();
        if (!first) return;
        const onBreak: BreakListener = (lengthMs, reply) => {
          breaks.push(lengthMs);
          reply(true);
        };
        (session as unknown as { on(event: 'break', listener: BreakListener): void }).on('break', onBreak);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new ssh2.Client();
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject).on('banner', (message: string) => banners.push(message));
      client.connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, username: 'u', password: 'p' });
    });
    assert.ok(seen[0]?.socket instanceof Socket, 'the connection\'s socket');
    assert.equal(seen[0]!.socket!.remotePort, (client as unknown as { _sock: Socket })._sock.localPort, 'it is this client\'s connection');
    assert.equal(seen[0]!.routed, true, 'break requests are routed');
    assert.equal(seen[0]!.banner, true);
    assert.deepEqual(banners, ['[lifeline] a notice for this connection\r\n'], 'the banner sent during authentication reached the client');
    const shell = (): Promise<ssh2.ClientChannel> => new Promise((resolve, reject) => client.shell((error, channel) => (error ? reject(error) : resolve(channel))));
    const answering = await shell();
    assert.equal(await sendSshBreak(client, answering, 300), true, 'the session sent the break');
    assert.deepEqual(breaks, [300]);
    const silent = await shell();
    assert.equal(await sendSshBreak(client, silent), false, 'a session without a break listener refuses it');
    // A refused forward carries the relay's code and reason to the client (ssh2's own reject() sends none).
    const refused = await new Promise<Error & { reason?: number }>((resolve) => client.forwardOut('127.0.0.1', 0, 'elsewhere', 22, (error) => resolve(error as Error & { reason?: number })));
    assert.equal(refused.message, '(SSH) Channel open failure: only vnc:5900 is forwarded');
    assert.equal(refused.reason, OPEN_FAILURE.administrativelyProhibited);
  } finally {
    client.end();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
