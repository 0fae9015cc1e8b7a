import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createWebSocketStream, WebSocket } from 'ws';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession } from '../helpers/openssh.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { rfbHandshake } from '../helpers/rfb.js';
import { tempDir } from '../helpers/temp.js';

/*
 * One low-privilege token cannot take the relay offline (issue 24, part 2): a relay limited to
 * 400 open files, a consoles:read token opening 600 kept-alive API connections from 127.0.0.5;
 * the relay keeps descriptors for everyone else, and another client is served on the API, SSH
 * and the WebSocket VNC port.
 */
const FILE_LIMIT = 400;

/** One raw HTTP/1.1 keep-alive request on a new connection from `from`; resolves with the status, or 0 when the connection was closed without an answer. Leaves the socket open. */
function holdConnection(port: number, from: string, token: string, sockets: Socket[]): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    sockets.push(socket);
    let text = '';
    const done = (status: number): void => {
      socket.removeAllListeners('data');
      resolve(status);
    };
    socket.on('error', () => done(0));
    socket.on('close', () => done(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on('connect', () => socket.write(`GET /v1/virtualMachines HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ${token}\r\nConnection: keep-alive\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (status && text.includes('\r\n\r\n') && /\}$/.test(text.trim())) done(Number(status[1]));
    });
  });
}

describe('API connection caps after authentication', () => {
  let lab: Lab;
  let relay: RelayProcess;
  const tmp = tempDir('conncaps');
  const sockets: Socket[] = [];
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    lab = startLab(1);
    const dataDir = join(tmp.path, 'data');
    relay = await startRelay(testConfig(lab.configPath, dataDir), dataDir, {}, [], undefined, ['prlimit', `--nofile=${FILE_LIMIT}:${FILE_LIMIT}`]);
  });
  after(() => runCleanups([() => sockets.forEach((socket) => socket.destroy()), ...cleanups.reverse(), () => relay?.stop(), () => lab?.down(), tmp.dispose]));

  test('a token holding hundreds of connections is capped, the relay keeps descriptors, and another client is served on all three ports', async () => {
    const reader = (await relay.api('POST', '/v1/tokens', { name: 'reader', scopes: ['consoles:read'] })).body.token as string;
    const apiPort = Number(new URL(relay.apiUrl).port);
    const statuses: number[] = [];
    for (let batch = 0; batch < 6; batch++) {
      statuses.push(...(await Promise.all(Array.from({ length: 100 }, () => holdConnection(apiPort, '127.0.0.5', reader, sockets)))));
    }
    const served = statuses.filter((status) => status === 200).length;
    const tooMany = statuses.filter((status) => status === 429).length;
    assert.ok(served <= 32, `${served} connections served to one token (api.maxConnectionsPerToken 32)`);
    assert.ok(served > 0 && tooMany > 0, `served ${served}, 429 ${tooMany}, other ${statuses.length - served - tooMany}`);
    const descriptors = readdirSync(`/proc/${relay.child.pid}/fd`).length;
    assert.ok(descriptors < FILE_LIMIT - 50, `the relay holds ${descriptors} of ${FILE_LIMIT} descriptors`);

    // Everyone else: the API (another token, another address), SSH and the WebSocket VNC port.
    const relayInfo = await relay.api('GET', '/v1/relay');
    assert.equal(relayInfo.status, 200);
    const key = generateKey(tmp.path, 'key');
    const put = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(put.status, 201);
    const session = new OpenSshSession({ port: relay.sshPort, user: put.body.virtualMachineAccessId, key: key.privateKeyPath });
    cleanups.push(() => session.close());
    session.send('\r');
    await session.waitFor(/lab-1:[^\n]*# /, 60_000);
    const minted = await relay.api('POST', '/v1/virtualMachines/lab-1/vncTokens');
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const ws = new WebSocket(minted.body.url.replace(/^http/, 'ws'), ['binary']);
    cleanups.push(() => ws.terminate());
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    assert.equal((await rfbHandshake(createWebSocketStream(ws))).name, 'QEMU (lab-1)');

    // The limit is logged and counted.
    assert.match(relay.output(), /"reason":"per-token".*API connection limit reached/);
    const metrics = String((await relay.api('GET', '/metrics')).body);
    const refused = Number(/lifeline_api_connections_refused_total\{reason="per-token"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.ok(refused >= tooMany, `counted ${refused}`);
  });

  test('one address is capped too, whatever tokens it uses', async () => {
    const apiPort = Number(new URL(relay.apiUrl).port);
    // Three tokens (3 × 32 would be allowed per token); batches of 15, so the pre-auth limits are not what stops them.
    const tokens: string[] = [];
    for (const name of ['a', 'b', 'c']) tokens.push((await relay.api('POST', '/v1/tokens', { name: `address-${name}`, scopes: ['consoles:read'] })).body.token);
    const results: number[] = [];
    for (let batch = 0; batch < 6; batch++) {
      results.push(...(await Promise.all(Array.from({ length: 15 }, (_, i) => holdConnection(apiPort, '127.0.0.6', tokens[(batch * 15 + i) % 3]!, sockets)))));
    }
    const served = results.filter((status) => status === 200).length;
    assert.equal(served, 64, `${served} of 90 served to one address (api.maxConnectionsPerSource 64)`);
    assert.equal(results.filter((status) => status === 0).length, 26, 'the rest are closed at accept');
    assert.equal((await relay.api('GET', '/v1/relay')).status, 200, 'another address is still served');
    assert.match(relay.output(), /"reason":"per-source".*API connection limit reached/);
  });
});
