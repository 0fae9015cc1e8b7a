import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RELAY_BIN, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

const tmp = tempDir('cli');

function serve(config: unknown, name: string): { status: number | null; stderr: string } {
  const path = join(tmp.path, name);
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config));
  const result = spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', path], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stderr: result.stderr + result.stdout };
}

describe('lifeline-relay command line and config validation', () => {
  after(() => tmp.dispose());
  const sockets = join(tmp.path, 'sockets');
  mkdirSync(sockets);
  const base = {
    dataDir: join(tmp.path, 'data'),
    api: { listen: '127.0.0.1:0' },
    ssh: { port: 0 },
    virtualMachines: [{ name: 'vm1', serial: join(sockets, 'vm1.sock') }],
  };

  const cases: Array<[string, unknown, RegExp]> = [
    ['unknown top-level key', { ...base, sssh: { port: 22 } }, /sssh: unknown key; expected one of dataDir, api, ssh/],
    ['unknown nested key', { ...base, ssh: { port: 0, prot: 1 } }, /ssh\.prot: unknown key/],
    ['bad listen address', { ...base, api: { listen: 'localhost:99999' } }, /api\.listen: must be <ip>:<port>/],
    ['bad endpoint address', { ...base, endpoints: { default: { ipAddress: '300.1.1.1' } } }, /endpoints\.default\.ipAddress: must be an IPv4 address/],
    ['bad address pool', { ...base, endpoints: { addressPool: ['127.0.0.0/40'] } }, /endpoints\.addressPool\[0\]: must be an IPv4 CIDR block/],
    ['port out of range', { ...base, ssh: { port: 70000 } }, /ssh\.port: must be an integer from 0 to 65535/],
    ['bad duration', { ...base, consoles: { maxTtl: 'forever' } }, /consoles\.maxTtl: must be a duration/],
    ['default beyond max', { ...base, consoles: { defaultTtl: '40d', maxTtl: '30d' } }, /consoles\.defaultTtl: must not be longer than consoles\.maxTtl/],
    ['VM without socket paths', { ...base, virtualMachines: [{ name: 'vm1' }] }, /virtualMachines\[0\] \(vm1\): needs a serial socket path, a vnc socket path, or both/],
    ['socket folder missing', { ...base, virtualMachines: [{ name: 'vm1', serial: join(tmp.path, 'nowhere', 'serial.sock') }] }, /virtualMachines\[0\]\.serial: the folder of .* does not exist/],
    ['socket path is a file', { ...base, virtualMachines: [{ name: 'vm1', serial: join(tmp.path, 'cli-plain-file') }] }, /virtualMachines\[0\]\.serial: .* exists but is not a unix socket/],
    ['bad tcp address', { ...base, virtualMachines: [{ name: 'vm1', vnc: 'tcp://host' }] }, /virtualMachines\[0\]\.vnc: must be tcp:\/\/<host>:<port>/],
    ['duplicate VM', { ...base, virtualMachines: [{ name: 'vm1', serial: '/tmp/a.sock' }, { name: 'vm1', serial: '/tmp/b.sock' }] }, /virtualMachines\[1\]\.name: duplicate VM name "vm1"/],
    ['bad VM name', { ...base, virtualMachines: [{ name: 'vm 1', serial: '/tmp/a.sock' }] }, /virtualMachines\[0\]\.name: must be 1-63 letters/],
    ['YAML syntax error', 'api: { listen: [\n', /is not valid YAML or JSON/],
    ['an empty file', '', /--config: .* is empty; write \{\} to run on every default/],
    ['a file of blank lines', ' \n\n', /--config: .* is empty/],
  ];

  for (const [name, config, message] of cases) {
    test(`refuses to start on: ${name}`, () => {
      writeFileSync(join(tmp.path, 'cli-plain-file'), 'not a socket');
      const result = serve(config, `${name.replace(/\W+/g, '-')}.json`);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /^lifeline-relay: invalid config /);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('a missing config file and unknown commands are explained', () => {
    const missing = spawnSync(process.execPath, [RELAY_BIN, 'serve', '--config', join(tmp.path, 'absent.yaml')], { encoding: 'utf8' });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--config: cannot read .*absent\.yaml: ENOENT/);
    const unknown = spawnSync(process.execPath, [RELAY_BIN, 'frobnicate'], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const help = spawnSync(process.execPath, [RELAY_BIN, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /lifeline-relay serve --config FILE/);
  });

  test('a port already in use stops the relay with a clear message', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      const result = serve({ ...base, dataDir: join(tmp.path, 'busy'), ssh: { port } }, 'busy.json');
      assert.equal(result.status, 1);
      assert.match(result.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
    } finally {
      blocker.close();
    }
  });

  test('first start writes a 0600 admin token; LIFELINE_ADMIN_TOKEN is used instead when set', async () => {
    const dataDir = join(tmp.path, 'tokens');
    const path = join(tmp.path, 'tokens.yaml');
    writeFileSync(path, `dataDir: ${dataDir}\napi: { listen: 127.0.0.1:0 }\nssh: { port: 0 }\nvirtualMachines:\n  - { name: vm1, serial: ${join(sockets, 'vm1.sock')} }\n`);
    const first = await startRelay(path, dataDir);
    try {
      assert.equal(statSync(join(dataDir, 'admin.token')).mode & 0o777, 0o600);
      assert.equal((await first.api('GET', '/v1/relay')).status, 200);
    } finally {
      await first.stop();
    }
    const fromEnv = 'env-token-0123456789abcdefghijklmnopqrstuv';
    const second = await startRelay(path, dataDir, { LIFELINE_ADMIN_TOKEN: fromEnv });
    try {
      assert.equal((await second.api('GET', '/v1/relay')).status, 200);
      assert.doesNotMatch(second.output(), new RegExp(fromEnv), 'the token is never logged');
    } finally {
      await second.stop();
    }
  });

  test('a VM whose socket is missing is Unavailable until its socket appears, then Running', async () => {
    const dataDir = join(tmp.path, 'late');
    const socketPath = join(sockets, 'late.sock');
    const path = join(tmp.path, 'late.json');
    writeFileSync(path, JSON.stringify({ ...base, dataDir, vnc: { port: 0 }, virtualMachines: [{ name: 'late', serial: socketPath, vnc: join(sockets, 'late-vnc.sock') }] }));
    const relay = await startRelay(path, dataDir);
    let chardev: Server | undefined;
    const peers = new Set<Socket>();
    try {
      assert.equal((await relay.api('GET', '/v1/virtualMachines/late')).body.powerState, 'Unavailable');
      // A stand-in for QEMU's serial chardev: a unix socket server that keeps its one client.
      chardev = createServer((socket) => {
        peers.add(socket);
        socket.write('late-banner\r\n');
      });
      await new Promise<void>((resolve) => chardev!.listen(socketPath, resolve));
      await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/late')).body.powerState === 'Running', 10_000, 'the VM to be Running');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal((await relay.api('GET', '/v1/virtualMachines/late')).body.powerState, 'Running', 'stays attached');

      // Its VNC socket never appeared: a VNC connection is refused with a reason, not left hanging.
      const key = (await import('node:child_process')).execFileSync('sh', ['-c', `ssh-keygen -q -t ed25519 -N '' -f ${join(tmp.path, 'late-key')} && cat ${join(tmp.path, 'late-key.pub')}`], { encoding: 'utf8' }).trim();
      assert.equal((await relay.api('PUT', '/v1/virtualMachines/late/console', { enabled: true, sshPublicKey: { keyData: key } })).status, 201);
      const minted = await relay.api('POST', '/v1/virtualMachines/late/vncTokens');
      assert.equal(minted.status, 201);
      const started = Date.now();
      const { WebSocket } = await import('ws');
      const refusal = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(minted.body.url.replace(/^http/, 'ws'));
        ws.once('open', () => reject(new Error('the WebSocket opened')));
        ws.once('error', () => undefined);
        ws.once('unexpected-response', (_request, response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        });
      });
      assert.equal(refusal.status, 503);
      assert.match(refusal.body, /the screen of late is not available/);
      assert.ok(Date.now() - started < 5000);
    } finally {
      for (const peer of peers) peer.destroy();
      chardev?.close();
      await relay.stop();
    }
  });
});

describe('control API over TLS', () => {
  const tls = tempDir('tls');
  after(() => tls.dispose());

  test('with api.tls the API speaks HTTPS with the given certificate', async () => {
    const { execFileSync } = await import('node:child_process');
    const { request } = await import('node:https');
    const cert = join(tls.path, 'cert.pem');
    const key = join(tls.path, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const dataDir = join(tls.path, 'data');
    mkdirSync(join(tls.path, 'sockets'));
    const configPath = join(tls.path, 'relay.yaml');
    writeFileSync(configPath, `dataDir: ./data\napi: { listen: 127.0.0.1:0, tls: { cert: cert.pem, key: key.pem } }\nssh: { port: 0 }\nvirtualMachines:\n  - { name: vm1, serial: ./sockets/vm1.sock }\n`);
    const relay = await startRelay(configPath, dataDir);
    try {
      assert.match(relay.apiUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${relay.apiUrl}/v1/relay`, { ca: readFileSync(cert), headers: { authorization: `Bearer ${relay.token}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
    } finally {
      await relay.stop();
    }
  });
});
