import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startLab, type Lab } from '../helpers/lab.js';
import { generateKey, type KeyPair } from '../helpers/openssh.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

interface BadRequest {
  name: string;
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
  message?: RegExp;
}

describe('control API: bad input is refused with the documented status and code and changes nothing', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let key: KeyPair;
  let rsa1024: KeyPair;
  let rsa2048: KeyPair;
  let ecdsa: KeyPair;
  const tmp = tempDir('api');
  const dataDir = join(tmp.path, 'data');

  before(async () => {
    lab = startLab(1);
    relay = await startRelay(testConfig(lab.configPath, dataDir, { consoles: { defaultTtl: '1h', maxTtl: '2d' } }), dataDir);
    key = generateKey(tmp.path, 'ed');
    rsa1024 = generateKey(tmp.path, 'rsa1024', 'rsa', 1024);
    rsa2048 = generateKey(tmp.path, 'rsa2048', 'rsa', 2048);
    ecdsa = generateKey(tmp.path, 'ecdsa', 'ecdsa', 384);
  });

  after(async () => {
    await relay?.stop();
    lab?.down();
    tmp.dispose();
  });

  /** Every row of every table, read straight from the relay's SQLite file. */
  function storeSnapshot(): string {
    const db = new Database(join(dataDir, 'lifeline.db'), { readonly: true, fileMustExist: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
      // The audit head (bookkeeping of the trail, which records every refusal) moves with each refusal: not state.
      return JSON.stringify(tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ${name === 'meta' ? "WHERE key <> 'auditHead'" : ''} ORDER BY 1`).all()]));
    } finally {
      db.close();
    }
  }

  test('valid consoles: defaults, every accepted key type, replace keeps the access id', async () => {
    const created = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(created.status, 201);
    const ttl = Date.parse(created.body.expiration) - Date.parse(created.body.createdAt);
    assert.ok(Math.abs(ttl - 3_600_000) < 1000, `default TTL from the config (1h), got ${ttl} ms`);
    assert.match(created.body.keyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(created.body.detailedStatus, 'Ready');
    for (const accepted of [rsa2048, ecdsa]) {
      const replaced = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: accepted.publicKey }, expiration: new Date(Date.now() + 86_400_000).toISOString().replace('Z', '+00:00') });
      assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
      assert.equal(replaced.body.virtualMachineAccessId, created.body.virtualMachineAccessId);
    }
    const disabled = await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { enabled: false });
    assert.equal(disabled.body.detailedStatus, 'Disabled');
    const restored = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(restored.status, 200);
    const listed = await relay.api('GET', '/v1/virtualMachines');
    assert.deepEqual(listed.body.value.map((vm: { name: string; consoleTypes: string[] }) => [vm.name, vm.consoleTypes]), [['lab-1', ['serial', 'vnc']]]);
    assert.equal(listed.body.value[0].console.virtualMachineAccessId, created.body.virtualMachineAccessId);
  });

  test('the bad-input table', async () => {
    const json = { 'content-type': 'application/json' };
    const put = (body: unknown): string => JSON.stringify(body);
    const keyData = key.publicKey;
    const future = (ms: number): string => new Date(Date.now() + ms).toISOString();
    const cases: BadRequest[] = [
      { name: 'malformed JSON', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: '{"enabled": tru', headers: json, status: 400, code: 'InvalidJson' },
      { name: 'empty body', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: '', headers: json, status: 400, code: 'InvalidJson' },
      { name: 'body is a list', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: '[1,2]', headers: json, status: 400, code: 'ValidationFailed' },
      { name: 'enabled as a string', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: 'yes', sshPublicKey: { keyData } }), headers: json, status: 400, code: 'ValidationFailed', message: /enabled/ },
      { name: 'keyData as a number', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: true, sshPublicKey: { keyData: 42 } }), headers: json, status: 400, code: 'ValidationFailed', message: /keyData/ },
      { name: 'missing sshPublicKey', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: true }), headers: json, status: 400, code: 'ValidationFailed', message: /sshPublicKey/ },
      { name: 'unknown field', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: true, sshPublicKey: { keyData }, owner: 'mallory' }), headers: json, status: 400, code: 'ValidationFailed', message: /unknown field "owner"/ },
      { name: 'unknown nested field', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ sshPublicKey: { keyData, extra: 1 } }), headers: json, status: 400, code: 'ValidationFailed', message: /unknown field "extra"/ },
      { name: 'empty PATCH', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: '{}', headers: json, status: 400, code: 'ValidationFailed' },
      { name: 'expiration without a zone', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: true, sshPublicKey: { keyData }, expiration: future(3_600_000).replace('Z', '') }), headers: json, status: 400, code: 'InvalidExpiration', message: /time zone/ },
      { name: 'expiration as a date only', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ expiration: '2030-01-01' }), headers: json, status: 400, code: 'InvalidExpiration' },
      { name: 'expiration on Feb 30', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ expiration: '2027-02-30T00:00:00Z' }), headers: json, status: 400, code: 'InvalidExpiration' },
      { name: 'expiration in the past', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ expiration: '2020-01-01T00:00:00Z' }), headers: json, status: 400, code: 'InvalidExpiration', message: /future/ },
      { name: 'expiration beyond max TTL', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ expiration: future(3 * 86_400_000) }), headers: json, status: 400, code: 'InvalidExpiration', message: /maximum/ },
      { name: 'garbage key', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ sshPublicKey: { keyData: 'not a key at all' } }), headers: json, status: 400, code: 'InvalidSshPublicKey' },
      { name: 'truncated key', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ sshPublicKey: { keyData: keyData.slice(0, 60) } }), headers: json, status: 400, code: 'InvalidSshPublicKey' },
      { name: 'private key pasted', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ sshPublicKey: { keyData: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----' } }), headers: json, status: 400, code: 'InvalidSshPublicKey' },
      { name: 'RSA-1024 key', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ sshPublicKey: { keyData: rsa1024.publicKey } }), headers: json, status: 400, code: 'InvalidSshPublicKey', message: /at least 2048 bits; this one has 1024/ },
      { name: 'unknown VM', method: 'PUT', path: '/v1/virtualMachines/no-such-vm/console', body: put({ enabled: true, sshPublicKey: { keyData } }), headers: json, status: 404, code: 'VirtualMachineNotFound' },
      { name: 'bad VM name', method: 'GET', path: '/v1/virtualMachines/..%2F..%2Fetc', status: 400, code: 'ValidationFailed' },
      { name: 'unknown route', method: 'GET', path: '/v1/nothing', status: 404, code: 'NotFound' },
      { name: 'a method the route does not take', method: 'POST', path: '/v1/relay', status: 405, code: 'MethodNotAllowed', message: /takes GET, HEAD/ },
      { name: 'a method the console does not take', method: 'POST', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: false }), headers: json, status: 405, code: 'MethodNotAllowed', message: /takes GET, HEAD, PUT, PATCH, DELETE/ },
      { name: 'missing token', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: false }), headers: { ...json, authorization: '' }, status: 401, code: 'Unauthorized' },
      { name: 'invalid token', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: false }), headers: { ...json, authorization: 'Bearer llt_0123456789abcdefghijklmnop' }, status: 401, code: 'Unauthorized' },
      { name: 'not a bearer token', method: 'GET', path: '/v1/relay', headers: { authorization: 'Basic YWRtaW46YWRtaW4=' }, status: 401, code: 'Unauthorized' },
      { name: '2 MiB body', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: true, sshPublicKey: { keyData }, expiration: 'x'.repeat(2 * 1024 * 1024) }), headers: json, status: 413, code: 'PayloadTooLarge' },
      { name: 'wrong content type', method: 'PUT', path: '/v1/virtualMachines/lab-1/console', body: put({ enabled: false, sshPublicKey: { keyData } }), headers: { 'content-type': 'text/plain' }, status: 415, code: 'UnsupportedMediaType' },
      { name: 'form content type', method: 'PATCH', path: '/v1/virtualMachines/lab-1/console', body: 'enabled=false', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UnsupportedMediaType' },
    ];
    const before = storeSnapshot();
    const consoleBefore = (await relay.api('GET', '/v1/virtualMachines/lab-1/console')).body;
    for (const c of cases) {
      const response = await relay.api(c.method, c.path, c.body, c.headers ?? {});
      assert.equal(response.status, c.status, `${c.name}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body?.error?.code, c.code, `${c.name}: ${JSON.stringify(response.body)}`);
      assert.equal(typeof response.body.error.message, 'string');
      assert.doesNotMatch(response.body.error.message, /\n\s+at /, `${c.name}: no stack trace`);
      if (c.message) assert.match(response.body.error.message, c.message, c.name);
      assert.equal(storeSnapshot(), before, `${c.name} left the store unchanged`);
    }
    assert.deepEqual((await relay.api('GET', '/v1/virtualMachines/lab-1/console')).body, consoleBefore);
    assert.equal((await fetch(`${relay.apiUrl}/healthz`)).status, 200);
  });

  test('GET /healthz needs no token; everything else does', async () => {
    const health = await fetch(`${relay.apiUrl}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', store: true, listeners: true });
    const relayInfo = await fetch(`${relay.apiUrl}/v1/relay`);
    assert.equal(relayInfo.status, 401);
    assert.equal(relayInfo.headers.get('content-type')?.startsWith('application/json'), true);
  });
});
