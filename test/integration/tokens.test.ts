import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, OpenSshSession, sshOnce, type KeyPair } from '../helpers/openssh.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/**
 * Scoped API tokens against a real relay with real lab VMs (renamed web-1 and db-1): scopes,
 * VM globs for the API and the SSH consoles a token creates, deletion, and secrecy.
 */
describe('scoped API tokens', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let key: KeyPair;
  const tmp = tempDir('tokens');
  const dataDir = join(tmp.path, 'data');
  const cleanups: Array<() => unknown> = [];
  const secrets: string[] = [];

  before(async () => {
    lab = startLab(2);
    const config = testConfig(lab.configPath, dataDir, {}, (vm) => ({ ...vm, name: vm.name === 'lab-1' ? 'web-1' : 'db-1' }));
    relay = await startRelay(config, dataDir);
    key = generateKey(tmp.path, 'key');
  });

  after(() => runCleanups([...cleanups.reverse(), () => relay?.stop(), () => lab?.down(), tmp.dispose]));

  /** Creates a token with the admin token; remembers its secret to look for later. */
  async function createToken(body: Record<string, unknown>): Promise<{ id: string; token: string }> {
    const response = await relay.api('POST', '/v1/tokens', body);
    assert.equal(response.status, 201, JSON.stringify(response.body));
    secrets.push(response.body.token);
    return response.body;
  }

  function as(token: string) {
    return (method: string, path: string, body?: unknown) => relay.api(method, path, body, { authorization: `Bearer ${token}` });
  }

  test('a token is shown once at creation; lists show its name, scopes and prefix, never the secret', async () => {
    const created = await createToken({ name: 'reader', scopes: ['consoles:read'] });
    assert.match(created.token, /^llt_[A-Za-z0-9_-]{43}$/);
    const list = await relay.api('GET', '/v1/tokens');
    assert.equal(list.status, 200);
    const entry = list.body.value.find((t: { name: string }) => t.name === 'reader');
    assert.deepEqual(entry.scopes, ['consoles:read']);
    assert.equal(entry.prefix, created.token.slice(0, 10));
    assert.equal(entry.token, undefined);
    assert.doesNotMatch(JSON.stringify(list.body), new RegExp(created.token));
    // The admin token is an admin token as before.
    assert.deepEqual(list.body.value.find((t: { name: string }) => t.name === 'admin').scopes, ['admin']);
    // Names are unique; an unknown scope is named.
    const again = await relay.api('POST', '/v1/tokens', { name: 'reader', scopes: ['vnc'] });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'TokenNameTaken');
    const unknown = await relay.api('POST', '/v1/tokens', { name: 'x', scopes: ['consoles:everything'] });
    assert.equal(unknown.status, 400);
    const limitedAdmin = await relay.api('POST', '/v1/tokens', { name: 'y', scopes: ['admin'], virtualMachines: ['web-*'] });
    assert.equal(limitedAdmin.status, 400);
    assert.match(limitedAdmin.body.error.message, /admin token cannot be limited/);
    const past = await relay.api('POST', '/v1/tokens', { name: 'z', scopes: ['vnc'], expiresAt: '2020-01-01T00:00:00Z' });
    assert.equal(past.status, 400);
  });

  test('consoles:read only: reads work; PUT console and minting a VNC token are 403 Forbidden naming the scope, and change nothing', async () => {
    const reader = as((await createToken({ name: 'read-only', scopes: ['consoles:read'] })).token);
    const vms = await reader('GET', '/v1/virtualMachines');
    assert.equal(vms.status, 200);
    assert.deepEqual(vms.body.value.map((vm: { name: string }) => vm.name).sort(), ['db-1', 'web-1']);

    const put = await reader('PUT', '/v1/virtualMachines/web-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(put.status, 403);
    assert.equal(put.body.error.code, 'Forbidden');
    assert.match(put.body.error.message, /lacks the scope "consoles:write"/);
    assert.equal((await relay.api('GET', '/v1/virtualMachines/web-1/console')).status, 404, 'no console was made');

    assert.equal((await relay.api('PUT', '/v1/virtualMachines/web-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).status, 201);
    const vnc = await reader('POST', '/v1/virtualMachines/web-1/vncTokens');
    assert.equal(vnc.status, 403);
    assert.match(vnc.body.error.message, /lacks the scope "vnc"/);
    for (const [method, path] of [['GET', '/v1/sessions'], ['GET', '/v1/tokens'], ['GET', '/v1/auditEvents'], ['PUT', '/v1/privateEndpoints/x'], ['POST', '/v1/virtualMachines/web-1/powerActions']] as const) {
      const refused = await reader(method, path, method === 'GET' ? undefined : method === 'PUT' ? {} : { action: 'nmi' });
      assert.equal(refused.status, 403, `${method} ${path}`);
      assert.equal(refused.body.error.code, 'Forbidden');
    }
    assert.equal((await relay.api('DELETE', '/v1/virtualMachines/web-1/console')).status, 204);
  });

  test('a token for web-*: lists only those VMs; another VM is 403 (existing or not); the SSH console it makes opens only its VM', async () => {
    const web = as((await createToken({ name: 'web-team', scopes: ['consoles:read', 'consoles:write', 'sessions'], virtualMachines: ['web-*'] })).token);
    const vms = await web('GET', '/v1/virtualMachines');
    assert.deepEqual(vms.body.value.map((vm: { name: string }) => vm.name), ['web-1']);
    for (const vm of ['db-1', 'nonexistent']) {
      const read = await web('GET', `/v1/virtualMachines/${vm}`);
      assert.equal(read.status, 403, vm);
      assert.match(read.body.error.message, /limited to virtual machines matching web-\*/);
    }
    const other = await web('PUT', '/v1/virtualMachines/db-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(other.status, 403);
    assert.equal((await relay.api('GET', '/v1/virtualMachines/db-1/console')).status, 404);

    const own = await web('PUT', '/v1/virtualMachines/web-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(own.status, 201);
    const session = new OpenSshSession({ port: relay.sshPort, user: own.body.virtualMachineAccessId, key: key.privateKeyPath });
    cleanups.push(() => session.close());
    session.send('\r');
    await session.waitFor(/# /, 60_000);
    await session.run('uname -n', /web-1|lab-1/);

    // db-1 gets a console from the admin (another key): the team's key does not open it, whatever user it tries.
    const otherKey = generateKey(tmp.path, 'db-key');
    const db = await relay.api('PUT', '/v1/virtualMachines/db-1/console', { enabled: true, sshPublicKey: { keyData: otherKey.publicKey } });
    const refused = await sshOnce({ port: relay.sshPort, user: db.body.virtualMachineAccessId, key: key.privateKeyPath });
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /Permission denied/);

    // Sessions: the team sees its own VM's session only.
    const dbSession = new OpenSshSession({ port: relay.sshPort, user: db.body.virtualMachineAccessId, key: otherKey.privateKeyPath });
    cleanups.push(() => dbSession.close());
    dbSession.send('\r');
    await dbSession.waitFor(/# /, 60_000);
    const all = await relay.api('GET', '/v1/sessions');
    assert.deepEqual(all.body.value.map((s: { virtualMachine: string }) => s.virtualMachine).sort(), ['db-1', 'web-1']);
    const seen = await web('GET', '/v1/sessions');
    assert.deepEqual(seen.body.value.map((s: { virtualMachine: string }) => s.virtualMachine), ['web-1']);
    const dbId = all.body.value.find((s: { virtualMachine: string }) => s.virtualMachine === 'db-1').id;
    assert.equal((await web('DELETE', `/v1/sessions/${dbId}`)).status, 404, 'another VM\'s session is not the team\'s to close');
    assert.ok(dbSession.running, 'and it goes on');
  });

  test('a VM-limited token cannot hold the endpoints scope, which reaches every VM\'s sessions', async () => {
    const refused = await relay.api('POST', '/v1/tokens', { name: 'web-endpoints', scopes: ['consoles:read', 'endpoints'], virtualMachines: ['web-*'] });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /a token limited to some VMs cannot have the scope "endpoints": private endpoints carry every VM's sessions/);
    assert.ok(!(await relay.api('GET', '/v1/tokens')).body.value.some((t: { name: string }) => t.name === 'web-endpoints'), 'nothing was created');
    // Unlimited, it may.
    await createToken({ name: 'net-ops', scopes: ['endpoints'] });
  });

  test('/metrics for a VM-limited token shows the relay-wide series and only its own VMs\' series', async () => {
    const all = await relay.api('GET', '/metrics');
    assert.match(String(all.body), /vm="db-1"/);
    const web = as((await createToken({ name: 'web-metrics', scopes: ['metrics'], virtualMachines: ['web-*'] })).token);
    const text = String((await web('GET', '/metrics')).body);
    assert.doesNotMatch(text, /vm="db-1"/);
    assert.match(text, /lifeline_vm_power_state\{vm="web-1"/);
    assert.match(text, /# TYPE lifeline_vm_power_state gauge/);
    assert.match(text, /process_start_time_seconds|lifeline_build_info/);
  });

  test('a deleted token is refused at once, while the sessions it set up go on', async () => {
    const created = await createToken({ name: 'short-lived', scopes: ['consoles:read', 'consoles:write'] });
    const temp = as(created.token);
    const own = await temp('PUT', '/v1/virtualMachines/web-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(own.status, 200);
    const session = new OpenSshSession({ port: relay.sshPort, user: own.body.virtualMachineAccessId, key: key.privateKeyPath });
    cleanups.push(() => session.close());
    session.send('\r');
    await session.waitFor(/# /, 60_000);

    assert.equal((await relay.api('DELETE', `/v1/tokens/${created.id}`)).status, 204);
    const after = await temp('GET', '/v1/virtualMachines');
    assert.equal(after.status, 401);
    assert.equal(after.body.error.code, 'Unauthorized');
    await session.run('echo still-$((40+2))', /still-42/);
    assert.equal((await relay.api('DELETE', `/v1/tokens/${created.id}`)).status, 404);

    // The last admin token cannot be deleted: the relay would have no one to manage it.
    const adminId = (await relay.api('GET', '/v1/tokens')).body.value.find((t: { name: string }) => t.name === 'admin').id;
    const last = await relay.api('DELETE', `/v1/tokens/${adminId}`);
    assert.equal(last.status, 409);
    assert.equal(last.body.error.code, 'LastAdminToken');
  });

  test('the token secrets appear nowhere after creation: not in responses, the log, or any file of the data folder', async () => {
    assert.ok(secrets.length >= 4);
    const everything = [
      JSON.stringify((await relay.api('GET', '/v1/tokens')).body),
      JSON.stringify((await relay.api('GET', '/v1/auditEvents?limit=1000')).body),
      relay.output(),
      ...filesUnder(dataDir).map((file) => readFileSync(file).toString('latin1')),
    ].join('\n');
    for (const secret of secrets) {
      assert.ok(!everything.includes(secret), 'a token secret leaked');
      assert.ok(!everything.includes(secret.slice(4)), 'a token secret leaked without its prefix');
    }
    assert.ok(everything.includes(secrets[0]!.slice(0, 10)), 'the prefix is what is kept');
  });
});
