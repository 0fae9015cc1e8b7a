import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession, sshOnce, type KeyPair } from '../helpers/openssh.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

/** Connects from `source` and resolves with the first bytes the server sends, or the error. */
function firstBytes(host: string, port: number, source: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, localAddress: source });
    socket.once('data', (data) => {
      socket.destroy();
      resolve(`data:${data.toString('latin1').split('\r\n')[0]}`);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(`error:${error.code}`));
    socket.once('close', () => resolve('closed'));
  });
}

describe('private endpoints with allowed source prefixes', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let key: KeyPair;
  let accessId: string;
  const tmp = tempDir('endpoints');
  const sessions: OpenSshSession[] = [];

  before(async () => {
    lab = startLab(1);
    const dataDir = join(tmp.path, 'data');
    relay = await startRelay(testConfig(lab.configPath, dataDir, { endpoints: { default: { ipAddress: '127.0.0.1' }, addressPool: ['127.0.0.0/24', '127.0.2.0/24'] } }), dataDir);
    key = generateKey(tmp.path, 'key');
    const created = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    accessId = created.body.virtualMachineAccessId as string;
  });

  after(async () => {
    for (const session of sessions) session.close();
    await relay?.stop();
    lab?.down();
    tmp.dispose();
  });

  test('an allowed source gets in; another 127.x source is refused before any SSH bytes', async () => {
    const created = await relay.api('PUT', '/v1/privateEndpoints/ops', { ipAddress: '127.0.0.77', allowedSourcePrefixes: ['127.0.0.9/32'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(
      { ...created.body, sshPort: 0 },
      { name: 'ops', ipAddress: '127.0.0.77', advertiseAddress: '127.0.0.77', sshPort: 0, vncPort: created.body.vncPort, allowedSourcePrefixes: ['127.0.0.9/32'], provisioningState: 'Succeeded' },
    );
    const port = created.body.sshPort as number;

    assert.match(await firstBytes('127.0.0.77', port, '127.0.0.9'), /^data:SSH-2\.0-Lifeline/);
    assert.match(await firstBytes('127.0.0.77', port, '127.0.0.10'), /^(error:ECONNRESET|closed)$/);
    // The WebSocket VNC listener of the endpoint applies the same rule before any HTTP byte.
    const vncPort = created.body.vncPort as number;
    const asHttp = (source: string): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect({ host: '127.0.0.77', port: vncPort, localAddress: source });
        socket.once('connect', () => socket.write('GET /?token=x HTTP/1.1\r\nHost: relay\r\n\r\n'));
        socket.once('data', (data) => {
          socket.destroy();
          resolve(`data:${data.toString('latin1').split('\r\n')[0]}`);
        });
        socket.once('error', (error: NodeJS.ErrnoException) => resolve(`error:${error.code}`));
        socket.once('close', () => resolve('closed'));
      });
    assert.equal(await asHttp('127.0.0.9'), 'data:HTTP/1.1 403 Forbidden');
    assert.match(await asHttp('127.0.0.10'), /^(error:ECONNRESET|closed)$/);

    const allowed = new OpenSshSession({ port, host: '127.0.0.77', bindAddress: '127.0.0.9', user: accessId, key: key.privateKeyPath });
    sessions.push(allowed);
    allowed.send('\r');
    await allowed.waitFor(/lab-1:[^\n]*# /, 30_000);
    await allowed.run('echo via-endpoint-$((8+8))', 'via-endpoint-16');

    const refused = await sshOnce({ port, host: '127.0.0.77', bindAddress: '127.0.0.10', user: accessId, key: key.privateKeyPath });
    assert.equal(refused.code, 255);
    assert.match(refused.output, /Connection reset|Connection closed|kex_exchange_identification/);
    assert.ok(allowed.running, 'a refused stranger does not disturb the allowed session');

    const sessionsList = (await relay.api('GET', '/v1/sessions')).body.value as Array<{ endpoint: string; remoteAddress: string }>;
    assert.ok(sessionsList.some((s) => s.endpoint === 'ops' && s.remoteAddress === '127.0.0.9'));

    // Narrowing the allow list drops the sessions it no longer admits.
    const narrowed = await relay.api('PUT', '/v1/privateEndpoints/ops', { ipAddress: '127.0.0.77', allowedSourcePrefixes: ['127.0.0.8/32'] });
    assert.equal(narrowed.status, 200);
    await allowed.waitFor('[lifeline] session closed: your address is no longer allowed on the private endpoint "ops"', 5000);
    await allowed.exited;
  });

  test('deleting an endpoint closes its listener and the sessions that came through it', async () => {
    const created = await relay.api('PUT', '/v1/privateEndpoints/temp', { allowedSourcePrefixes: [] });
    assert.equal(created.status, 201);
    // Next free address of the pool: 127.0.0.1 is the default endpoint's, 127.0.0.77 is "ops".
    assert.equal(created.body.ipAddress, '127.0.0.2');
    const { sshPort: port, ipAddress } = created.body as { sshPort: number; ipAddress: string };
    const viaDefault = new OpenSshSession({ port: relay.sshPort, user: accessId, key: key.privateKeyPath });
    sessions.push(viaDefault);
    viaDefault.send('\r');
    await viaDefault.waitFor(/lab-1:[^\n]*# /, 30_000);
    const viaTemp = new OpenSshSession({ port, host: ipAddress, user: accessId, key: key.privateKeyPath });
    sessions.push(viaTemp);
    viaTemp.send('\r');
    await viaTemp.waitFor(/lab-1:[^\n]*# /, 30_000);
    // One serial session per VM, whichever endpoint it came through.
    await viaDefault.waitFor('[lifeline] session closed: another session was opened for lab-1', 5000);

    assert.equal((await relay.api('DELETE', '/v1/privateEndpoints/temp')).status, 204);
    await viaTemp.waitFor('[lifeline] session closed: the private endpoint "temp" was deleted', 5000);
    await viaTemp.exited;
    assert.match(await firstBytes(ipAddress, port, '127.0.0.1'), /^error:ECONNREFUSED$/);
    assert.equal((await relay.api('GET', '/v1/privateEndpoints/temp')).status, 404);
  });

  test('endpoint requests that cannot be met get clear errors and change nothing', async () => {
    const before = (await relay.api('GET', '/v1/privateEndpoints')).body;
    const cases: Array<[string, unknown, number, string]> = [
      ['outside', { ipAddress: '10.1.2.3' }, 422, 'AddressOutsidePool'],
      ['clash', { ipAddress: '127.0.0.77' }, 409, 'AddressInUse'],
      ['clash', { ipAddress: '127.0.0.1' }, 409, 'AddressInUse'],
      ['badprefix', { allowedSourcePrefixes: ['127.0.0.0/33'] }, 400, 'InvalidSourcePrefix'],
      ['badip', { ipAddress: '127.0.0.300' }, 400, 'InvalidIpAddress'],
      ['default', { ipAddress: '127.0.0.5' }, 409, 'EndpointManagedByConfig'],
      ['bad name!', {}, 400, 'ValidationFailed'],
    ];
    for (const [name, body, status, code] of cases) {
      const response = await relay.api('PUT', `/v1/privateEndpoints/${encodeURIComponent(name)}`, body);
      assert.equal(response.status, status, `${name}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.error.code, code);
      assert.ok(response.body.error.message.length > 10);
    }
    assert.equal((await relay.api('DELETE', '/v1/privateEndpoints/default')).body.error.code, 'EndpointManagedByConfig');
    assert.deepEqual((await relay.api('GET', '/v1/privateEndpoints')).body, before);
  });
});
