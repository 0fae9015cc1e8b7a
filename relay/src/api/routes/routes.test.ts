import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { startFakeConsole, type FakeConsole } from '../../../../test/bench/fake-console.js';
import { parseConfig } from '../../config/parse-config.js';
import { compileAllSchemas } from '../app.js';
import { createLogger } from '../../logger.js';
import { createRelay, type Relay } from '../../relay.js';

/*
 * Each route module through fastify's `inject`, on a real relay built in this process: SQLite
 * store, audit trail, session supervisor, one VM with a serial console (a local echo socket) and
 * one without. No listener is needed for inject; the relay's own listeners are on ephemeral ports.
 */
const ADMIN = 'llt_inject-test-admin-token-0123456789abcdef';
let dir: string;
let relay: Relay;
let api: FastifyInstance;
let serial: FakeConsole;

function ed25519Line(): string {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  const field = (buf: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, buf.length]), buf]);
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(Buffer.from(jwk.x!, 'base64url'))]).toString('base64')} test`;
}

async function call(method: InjectOptions['method'], url: string, body?: unknown, token = ADMIN): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  const response = await api.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { payload: JSON.stringify(body) }) });
  const type = String(response.headers['content-type'] ?? '');
  return { status: response.statusCode, body: type.includes('json') ? response.json() : response.body, headers: response.headers };
}

async function tokenWith(scopes: string[], virtualMachines?: string[]): Promise<string> {
  const created = await call('POST', '/v1/tokens', { name: `t-${Math.random().toString(36).slice(2, 10)}`, scopes, ...(virtualMachines && { virtualMachines }) });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.token as string;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'll-inject-'));
  serial = await startFakeConsole(join(dir, 'serial.sock'), 0);
  const config = parseConfig({ dataDir: join(dir, 'data'), api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [{ name: 'vm-1', serial: serial.path }, { name: 'vm-2', serial: join(dir, 'absent.sock') }] }, 'inject', dir);
  relay = await createRelay(config, { log: createLogger('silent'), adminTokenFromEnvironment: ADMIN });
  api = relay.api;
});

after(async () => {
  await relay?.close();
  serial?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('route schemas', () => {
  test('every request and response schema compiles (the API compiles them on first use, so this is where a bad one shows)', async () => {
    const compiled = await compileAllSchemas(api);
    // Each of the ~25 routes has at least a response schema; a count near zero means the lazy compilers are not in use.
    assert.ok(compiled >= 40, `only ${compiled} schemas were waiting to compile`);
    assert.equal(await compileAllSchemas(api), 0, 'a second pass finds nothing left');
  });

  test('a refused body gets the same ajv message with the schemas compiled on first use', async () => {
    const response = await call('PUT', '/v1/virtualMachines/vm-1/console', { enabled: 'yes', sshPublicKey: { keyData: ed25519Line() } });
    assert.equal(response.status, 400);
    assert.match(response.body.error.message, /enabled/);
    assert.equal((await call('GET', '/v1/virtualMachines/vm-1/console')).status, 404, 'nothing was made');
  });
});

describe('relay routes', () => {
  test('GET /healthz needs no token; GET /v1/relay names the caller and the endpoints', async () => {
    const health = await api.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { status: 'ok', store: true, listeners: true });
    const info = await call('GET', '/v1/relay');
    assert.equal(info.status, 200);
    assert.equal(info.body.caller.scopes.includes('admin'), true);
    assert.equal(info.body.endpoints[0].name, 'default');
    assert.equal(info.body.caller.lastUsedAt, undefined);
    assert.equal((await call('GET', '/v1/relay', undefined, 'llt_not-a-valid-token-at-all')).status, 401);
  });

  test('GET /v1/openapi.json is a valid OpenAPI 3.1 document with every route, for any valid token', async () => {
    const reader = await tokenWith(['consoles:read']);
    const response = await call('GET', '/v1/openapi.json', undefined, reader);
    assert.equal(response.status, 200);
    const document = response.body as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.equal(document.openapi, '3.1.0');
    // An OpenAPI validator from npm checks the document against the OpenAPI schema and resolves it.
    await SwaggerParser.validate(structuredClone(document) as never);
    const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    for (const expected of [
      'GET /healthz', 'GET /v1/relay', 'GET /v1/virtualMachines', 'GET /v1/virtualMachines/{vm}', 'GET /v1/virtualMachines/{vm}/console', 'PUT /v1/virtualMachines/{vm}/console',
      'PATCH /v1/virtualMachines/{vm}/console', 'DELETE /v1/virtualMachines/{vm}/console', 'POST /v1/virtualMachines/{vm}/powerActions', 'POST /v1/virtualMachines/{vm}/vncTokens',
      'GET /v1/privateEndpoints', 'GET /v1/privateEndpoints/{name}', 'PUT /v1/privateEndpoints/{name}', 'DELETE /v1/privateEndpoints/{name}', 'GET /v1/sessions', 'DELETE /v1/sessions/{id}',
      'GET /metrics', 'POST /v1/tokens', 'GET /v1/tokens', 'DELETE /v1/tokens/{id}', 'GET /v1/auditEvents',
    ]) assert.ok(operations.includes(expected), `${expected} is described (have: ${operations.join(', ')})`);
    assert.equal((await api.inject({ method: 'GET', url: '/v1/openapi.json' })).statusCode, 401, 'not without a token');
  });
});

describe('console routes', () => {
  test('PUT creates (201) then replaces (200); GET and PATCH read and change; DELETE removes (204, then 404)', async () => {
    const keyData = ed25519Line();
    const created = await call('PUT', '/v1/virtualMachines/vm-1/console', { enabled: true, sshPublicKey: { keyData } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.detailedStatus, 'Ready');
    assert.equal((await call('PUT', '/v1/virtualMachines/vm-1/console', { enabled: true, sshPublicKey: { keyData } })).status, 200);
    const patched = await call('PATCH', '/v1/virtualMachines/vm-1/console', { enabled: false });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.detailedStatus, 'Disabled');
    assert.equal((await call('GET', '/v1/virtualMachines/vm-1/console')).body.enabled, false);
    assert.equal((await call('DELETE', '/v1/virtualMachines/vm-1/console')).status, 204);
    const gone = await call('GET', '/v1/virtualMachines/vm-1/console');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'ConsoleNotFound');
  });

  test('a bad key is a 400 InvalidSshPublicKey (a domain error, mapped by the errors plugin); an unknown VM a 404', async () => {
    const bad = await call('PUT', '/v1/virtualMachines/vm-1/console', { enabled: true, sshPublicKey: { keyData: 'ssh-ed25519 AAAA' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'InvalidSshPublicKey');
    const unknown = await call('PUT', '/v1/virtualMachines/nope/console', { enabled: true, sshPublicKey: { keyData: ed25519Line() } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'VirtualMachineNotFound');
  });
});

describe('virtual machine routes', () => {
  test('lists and reads VMs; a VM-limited token sees only its own and gets 403 for another', async () => {
    const list = await call('GET', '/v1/virtualMachines');
    assert.deepEqual(list.body.value.map((vm: { name: string }) => vm.name).sort(), ['vm-1', 'vm-2']);
    assert.equal((await call('GET', '/v1/virtualMachines/vm-1')).body.name, 'vm-1');
    const limited = await tokenWith(['consoles:read'], ['vm-1']);
    assert.deepEqual((await call('GET', '/v1/virtualMachines', undefined, limited)).body.value.map((vm: { name: string }) => vm.name), ['vm-1']);
    assert.equal((await call('GET', '/v1/virtualMachines/vm-2', undefined, limited)).status, 403);
  });

  test('a power action the VM cannot do is a 409 naming it; an unknown action a 400 listing the valid ones; the scope is required', async () => {
    const refused = await call('POST', '/v1/virtualMachines/vm-1/powerActions', { action: 'reset' });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    const invalid = await call('POST', '/v1/virtualMachines/vm-1/powerActions', { action: 'explode' });
    assert.equal(invalid.status, 400);
    assert.match(invalid.body.error.message, /must be one of reset, shutdown, powerOff, powerOn, nmi/);
    const reader = await tokenWith(['consoles:read']);
    assert.equal((await call('POST', '/v1/virtualMachines/vm-1/powerActions', { action: 'reset' }, reader)).status, 403);
  });
});

describe('VNC token routes', () => {
  test('a VM without VNC is a 409 ConsoleTypeNotAvailable', async () => {
    const refused = await call('POST', '/v1/virtualMachines/vm-1/vncTokens');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'ConsoleTypeNotAvailable');
  });
});

describe('endpoint routes', () => {
  test('lists the default endpoint; an endpoint outside the config pool is refused; an unknown one is 404; 405 names the methods', async () => {
    const list = await call('GET', '/v1/privateEndpoints');
    assert.equal(list.body.value[0].name, 'default');
    assert.equal((await call('GET', '/v1/privateEndpoints/default')).status, 200);
    const unknown = await call('GET', '/v1/privateEndpoints/nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'EndpointNotFound');
    const managed = await call('DELETE', '/v1/privateEndpoints/default');
    assert.equal(managed.status, 409);
    assert.equal(managed.body.error.code, 'EndpointManagedByConfig');
    const wrongMethod = await call('POST', '/v1/privateEndpoints/default', {});
    assert.equal(wrongMethod.status, 405);
    assert.match(String(wrongMethod.headers.allow), /GET/);
  });
});

describe('session routes', () => {
  test('lists no sessions; closing an unknown one is a 404 SessionNotFound', async () => {
    assert.deepEqual((await call('GET', '/v1/sessions')).body, { value: [] });
    const unknown = await call('DELETE', '/v1/sessions/nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'SessionNotFound');
  });
});

describe('metrics routes', () => {
  test('GET /metrics is Prometheus text for the metrics scope, 403 without it', async () => {
    const metrics = await call('GET', '/metrics', undefined, await tokenWith(['metrics']));
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.body), /^lifeline_build_info\{/m);
    assert.match(String(metrics.body), /^process_resident_memory_bytes /m);
    assert.equal((await call('GET', '/metrics', undefined, await tokenWith(['consoles:read']))).status, 403);
  });
});

describe('token routes', () => {
  test('creates (the secret once), lists without secrets, refuses a taken name and the last admin token, deletes', async () => {
    const created = await call('POST', '/v1/tokens', { name: 'one', scopes: ['audit'] });
    assert.equal(created.status, 201);
    assert.match(created.body.token, /^llt_/);
    assert.equal((await call('POST', '/v1/tokens', { name: 'one', scopes: ['audit'] })).body.error.code, 'TokenNameTaken');
    const list = await call('GET', '/v1/tokens');
    assert.ok(list.body.value.every((token: Record<string, unknown>) => token.token === undefined));
    const admin = list.body.value.find((token: { scopes: string[]; name: string }) => token.scopes.includes('admin') && token.name === 'admin');
    assert.equal((await call('DELETE', `/v1/tokens/${admin.id}`)).body.error.code, 'LastAdminToken');
    assert.equal((await call('DELETE', `/v1/tokens/${created.body.id}`)).status, 204);
    assert.equal((await call('POST', '/v1/tokens', { name: 'x', scopes: ['admin'], virtualMachines: ['vm-1'] })).status, 400);
  });
});

describe('audit routes', () => {
  test('the changes above are in the trail, paged by afterSeq; a bad limit is a 400', async () => {
    const first = await call('GET', '/v1/auditEvents?limit=2', undefined, await tokenWith(['audit']));
    assert.equal(first.status, 200);
    assert.equal(first.body.value.length, 2);
    const next = await call('GET', `/v1/auditEvents?afterSeq=${first.body.nextAfterSeq}&limit=1000`);
    assert.ok(next.body.value.some((event: { action?: string }) => event.action === 'console.put'), 'the console PUT was audited');
    assert.ok(next.body.value[0].seq > first.body.value[1].seq);
    assert.equal((await call('GET', '/v1/auditEvents?limit=0')).status, 400);
  });
});
