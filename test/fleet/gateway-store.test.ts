import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { ephemeralConfig, RELAY_BIN, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

// The fleet's admin token comes from a Secret: every gateway gets the same one.
const ADMIN_TOKEN = 'llt_fleetAdminTokenForTheGatewayTests0123456789abcdefXYZ';
const FLEET_SECRET = 'fleet-secret-for-the-gateway-tests-0123456789';
const FLEET_ENV = { LIFELINE_ADMIN_TOKEN: ADMIN_TOKEN, LIFELINE_FLEET_SECRET: FLEET_SECRET };

describe('gateways on one PostgreSQL database', () => {
  const dir = tempDir('gw');
  let pg: TestPostgres;
  const gateways: RelayProcess[] = [];
  let url: string;

  before(async () => {
    pg = await startPostgres();
    url = pg.createDatabase('fleet');
    for (const name of ['gw1', 'gw2']) {
      const { configPath, dataDir } = ephemeralConfig(dir.path, name, { role: 'gateway', store: { postgres: { url } }, agents: { listen: '127.0.0.1:0' } });
      gateways.push(await startRelay(configPath, dataDir, FLEET_ENV));
    }
  });
  after(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()));
    pg?.dispose();
    dir.dispose();
  });

  test('every gateway is the same relay: one relay id and SSH host key, and a token made on one works on the other', async () => {
    const [one, two] = gateways as [RelayProcess, RelayProcess];
    const [a, b] = await Promise.all([one.api('GET', '/v1/relay'), two.api('GET', '/v1/relay')]);
    assert.equal(a.status, 200);
    assert.equal(a.body.id, b.body.id);
    assert.deepEqual(a.body.sshHostKeys, b.body.sshHostKeys);
    // What an SSH client sees on the wire, from each gateway.
    const scanned = [one, two].map((gateway) => spawnSync('ssh-keyscan', ['-p', String(gateway.sshPort), '-t', 'ed25519', '127.0.0.1'], { encoding: 'utf8' }).stdout.trim().split(' ').slice(1).join(' '));
    assert.ok(scanned[0]!.startsWith('ssh-ed25519 '), scanned[0]);
    assert.equal(scanned[0], scanned[1]);
    assert.equal(scanned[0], a.body.sshHostKeys[0].publicKey.split(' ').slice(0, 2).join(' '));
    // The private key is in the database only sealed.
    const sealed = spawnSync('/usr/lib/postgresql/15/bin/psql', [url, '-At', '-c', "SELECT value FROM meta WHERE key = 'fleet.sshHostKey'"], { encoding: 'utf8' }).stdout;
    assert.match(sealed, /^sealed-v1:/);
    assert.doesNotMatch(sealed, /PRIVATE KEY/);
    const made = await one.api('POST', '/v1/tokens', { name: 'reader', scopes: ['consoles:read'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const listed = await fetch(`${two.apiUrl}/v1/virtualMachines`, { headers: { authorization: `Bearer ${made.body.token}` } });
    assert.equal(listed.status, 200);
    assert.equal((await two.api('DELETE', `/v1/tokens/${made.body.id}`)).status, 204);
    const refused = await fetch(`${one.apiUrl}/v1/virtualMachines`, { headers: { authorization: `Bearer ${made.body.token}` } });
    assert.equal(refused.status, 401, 'a token deleted through one gateway is refused by the other');
  });

  test('with the database down: /healthz is not ready, writes answer 503 StoreUnavailable; all works again once it is back', async () => {
    const [one] = gateways as [RelayProcess];
    pg.stop('fast');
    try {
      const health = await fetch(`${one.apiUrl}/healthz`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as { store: boolean }).store, false);
      const write = await one.api('POST', '/v1/tokens', { name: 'during-outage', scopes: ['vnc'] });
      assert.equal(write.status, 503, JSON.stringify(write.body));
      assert.equal(write.body.error.code, 'StoreUnavailable');
      assert.match(write.body.error.message, /database cannot be reached.*try again/);
    } finally {
      pg.start();
    }
    const back = Date.now();
    await waitUntil(async () => (await fetch(`${one.apiUrl}/healthz`)).status === 200, 5_000, 'the gateway to be ready again');
    assert.ok(Date.now() - back < 5_000);
    const after = await one.api('POST', '/v1/tokens', { name: 'after-outage', scopes: ['vnc'] });
    assert.equal(after.status, 201, JSON.stringify(after.body));
    const names = (await one.api('GET', '/v1/tokens')).body.value.map((token: { name: string }) => token.name);
    assert.ok(!names.includes('during-outage'), 'the refused write wrote nothing');
  });

  test('one audit trail for the fleet: writes through both gateways at once make one hash chain that audit verify checks and export writes as JSONL', async () => {
    const [one, two] = gateways as [RelayProcess, RelayProcess];
    const made = await Promise.all(Array.from({ length: 40 }, (_, index) => (index % 2 ? one : two).api('POST', '/v1/tokens', { name: `audit-${index}`, scopes: ['vnc'] })));
    assert.deepEqual([...new Set(made.map((response) => response.status))], [201]);
    // An event written through one gateway is read through the other.
    const listed = await two.api('GET', '/v1/auditEvents?limit=1000');
    assert.equal(listed.status, 200);
    const creates = listed.body.value.filter((event: { action?: string }) => event.action === 'token.create');
    assert.ok(creates.length >= 40, `${creates.length} token.create events`);
    const verified = spawnSync(process.execPath, [RELAY_BIN, 'audit', 'verify', '--config', one.configPath], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /^ok: \d+ events in the fleet database, seq 1 to \d+/);
    const exported = spawnSync(process.execPath, [RELAY_BIN, 'audit', 'export', '--config', two.configPath], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(exported.status, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((event) => event.seq), lines.map((_, index) => index + 1), 'one sequence, no gaps');
    for (let index = 1; index < lines.length; index++) assert.equal(lines[index].prev, lines[index - 1].hash);
    // A row changed in the database is found.
    spawnSync('/usr/lib/postgresql/15/bin/psql', [url, '-At', '-c', "UPDATE audit_events SET line = replace(line, 'audit-7', 'audit-X') WHERE line LIKE '%audit-7\"%'"], { encoding: 'utf8' });
    const tampered = spawnSync(process.execPath, [RELAY_BIN, 'audit', 'verify', '--config', one.configPath], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(tampered.status, 1);
    assert.match(tampered.stdout, /FAILED: the fleet database \(audit_events\) line \d+: its hash does not match its content/);
  });

  test('one TLS certificate for the fleet: two gateways with TLS on serve the same one, kept in the database with its key sealed', async () => {
    const started: RelayProcess[] = [];
    try {
      for (const name of ['tls1', 'tls2']) {
        const { configPath, dataDir } = ephemeralConfig(dir.path, name, { role: 'gateway', store: { postgres: { url } }, agents: { listen: '127.0.0.1:0' }, api: { listen: '127.0.0.1:0', tls: 'on' } });
        started.push(await startRelay(configPath, dataDir, FLEET_ENV));
      }
      const served = await Promise.all(
        started.map(
          (gateway) =>
            new Promise<string>((resolve, reject) => {
              const port = Number(new URL(gateway.apiUrl).port);
              const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
                resolve(socket.getPeerX509Certificate()!.fingerprint256);
                socket.end();
              });
              socket.once('error', reject);
            }),
        ),
      );
      assert.equal(served[0], served[1], 'both gateways present one certificate');
      const ready = started.map((gateway) => JSON.parse(gateway.output().split('\n').find((line) => line.includes('"relay ready"'))!));
      assert.equal(ready[0].tlsFingerprint, served[0]);
      assert.equal(ready[0].tlsCertificate, 'fleet');
      const kept = spawnSync('/usr/lib/postgresql/15/bin/psql', [url, '-At', '-c', "SELECT value FROM meta WHERE key = 'fleet.tls'"], { encoding: 'utf8' }).stdout;
      assert.match(kept, /BEGIN CERTIFICATE/);
      assert.match(JSON.parse(kept).key, /^sealed-v1:/);
      assert.doesNotMatch(kept, /PRIVATE KEY/);
    } finally {
      await Promise.all(started.map((gateway) => gateway.stop()));
    }
  });

  test('a gateway without the fleet secret, or with another one, does not start and says what to set', () => {
    const run = (env: Record<string, string>): string => {
      const { configPath } = ephemeralConfig(dir.path, `gw-${Math.random().toString(36).slice(2, 6)}`, { role: 'gateway', store: { postgres: { url } } });
      const result = spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', configPath], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, LIFELINE_ADMIN_TOKEN: ADMIN_TOKEN, ...env } });
      assert.notEqual(result.status, 0);
      return result.stdout + result.stderr;
    };
    assert.match(run({}), /set LIFELINE_FLEET_SECRET .* or LIFELINE_SSH_HOST_KEY/);
    assert.match(run({ LIFELINE_FLEET_SECRET: 'short' }), /LIFELINE_FLEET_SECRET is 5 characters long; it needs at least 32/);
    assert.match(run({ LIFELINE_FLEET_SECRET: 'another-fleet-secret-0123456789-abcdefgh' }), /does not open the fleet's SSH host key/);
  });

  test('a gateway whose database cannot be reached does not start, and says where it looked (password hidden)', () => {
    const { configPath } = ephemeralConfig(dir.path, 'gw-bad', { role: 'gateway', store: { postgres: { url: 'postgres://lifeline:s3cret@127.0.0.1:1/fleet' } } });
    const result = spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', configPath], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(result.status, 0);
    const output = result.stdout + result.stderr;
    assert.match(output, /store\.postgres\.url: cannot open the fleet's database at postgres:\/\/lifeline:\*\*\*@127\.0\.0\.1:1\/fleet/);
    assert.doesNotMatch(output, /s3cret/);
  });

  test('a gateway with VMs of its own, or one without a database, is refused at start naming the key', () => {
    const run = (settings: Record<string, unknown>): string => {
      const { configPath } = ephemeralConfig(dir.path, `gw-${Math.random().toString(36).slice(2, 6)}`, settings);
      const result = spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', configPath], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, LIFELINE_POSTGRES_URL: '' } });
      assert.notEqual(result.status, 0);
      return result.stdout + result.stderr;
    };
    assert.match(run({ role: 'gateway' }), /store\.postgres\.url: is needed with role: gateway/);
    assert.match(run({ role: 'gateway', store: { postgres: { url } }, virtualMachines: [{ name: 'vm1', serial: '/run/none.sock' }] }), /virtualMachines: a gateway holds no VM sockets/);
  });
});
