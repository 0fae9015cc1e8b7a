import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { generateKey } from '../helpers/openssh.js';
import { RELAY_BIN, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

/*
 * Advertised addresses (issue 24, part 7): a default endpoint on every address (0.0.0.0, as in
 * containers) is never what clients are sent to. Without advertiseAddress the relay refuses to
 * start and says how to set it; with it, token URLs and GET /v1/relay carry it.
 */
const tmp = tempDir('advertise');
let relay: RelayProcess | undefined;

function config(name: string, defaultEndpoint: Record<string, unknown>): { path: string; dataDir: string } {
  const dataDir = join(tmp.path, `${name}-data`);
  const path = join(tmp.path, `${name}.json`);
  writeFileSync(path, JSON.stringify({
    dataDir,
    api: { listen: '127.0.0.1:0', tls: 'off' }, // plain HTTP here, so the test reads it without the certificate
    ssh: { port: 0 },
    vnc: { port: 0 },
    endpoints: { default: defaultEndpoint },
    virtualMachines: [{ name: 'screen', vnc: join(tmp.path, 'screen-vnc.sock') }],
  }));
  return { path, dataDir };
}

describe('advertised addresses', () => {
  after(async () => {
    await relay?.stop();
    tmp.dispose();
  });

  test('a wildcard default endpoint without advertiseAddress stops the relay, naming the key and the environment variable', () => {
    const { path } = config('wildcard', { ipAddress: '0.0.0.0' });
    const result = spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', path], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, LIFELINE_ADVERTISE_ADDRESS: '' } });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /endpoints\.default\.advertiseAddress: is needed when endpoints\.default\.ipAddress is 0\.0\.0\.0 \(every address\).*set LIFELINE_ADVERTISE_ADDRESS/);
    const bad = config('bad', { ipAddress: '0.0.0.0', advertiseAddress: '0.0.0.0' });
    assert.match(spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', bad.path], { encoding: 'utf8', timeout: 20_000 }).stderr, /advertiseAddress: must be an IP address or a DNS name clients can reach \(not a wildcard\)/);
  });

  test('with LIFELINE_ADVERTISE_ADDRESS, token URLs and GET /v1/relay give it, never 0.0.0.0, and the URL opens', async () => {
    const { path, dataDir } = config('advertised', { ipAddress: '0.0.0.0' });
    relay = await startRelay(path, dataDir, { LIFELINE_ADVERTISE_ADDRESS: '127.0.0.1' });
    const info = await relay.api('GET', '/v1/relay');
    const endpoint = info.body.endpoints.find((e: { name: string }) => e.name === 'default');
    assert.deepEqual([endpoint.ipAddress, endpoint.advertiseAddress], ['0.0.0.0', '127.0.0.1']);
    assert.match(relay.output(), /"advertiseAddress":"127\.0\.0\.1"/);
    const key = generateKey(tmp.path, 'key');
    assert.equal((await relay.api('PUT', '/v1/virtualMachines/screen/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).status, 201);
    const minted = await relay.api('POST', '/v1/virtualMachines/screen/vncTokens');
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    assert.match(minted.body.url, new RegExp(`^http://127\\.0\\.0\\.1:${endpoint.vncPort}/\\?token=`));
    assert.doesNotMatch(JSON.stringify([info.body, minted.body]).replace(/"ipAddress":"0\.0\.0\.0"/, ''), /0\.0\.0\.0/);
    const page = await fetch(minted.body.url);
    assert.equal(page.status, 200, 'the advertised URL serves the noVNC page');
    // A private endpoint is one address: a wildcard is refused.
    const wildcard = await relay.api('PUT', '/v1/privateEndpoints/everywhere', { ipAddress: '0.0.0.0' });
    assert.equal(wildcard.status, 400);
    assert.match(wildcard.body.error.message, /a private endpoint listens on one address/);
  });
});
