import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from './parse-config.js';

test('the documented example parses with its defaults', () => {
  const config = parseConfig(
    {
      dataDir: './lifeline-data',
      api: { listen: '127.0.0.1:8440' },
      ssh: { port: 2222 },
      vnc: { port: 6080 },
      endpoints: { default: { ipAddress: '127.0.0.1' }, addressPool: ['127.0.0.0/8'] },
      consoles: { defaultTtl: '24h', maxTtl: '30d' },
      virtualMachines: [{ name: 'vm1', serial: '/run/lifeline/vm1/serial.sock', vnc: 'tcp://127.0.0.1:5901', qmp: 'vm1/qmp.sock' }],
    },
    '/etc/lifeline/relay.yaml',
    '/etc/lifeline',
  );
  assert.equal(config.dataDir, '/etc/lifeline/lifeline-data');
  assert.deepEqual(config.api, { host: '127.0.0.1', port: 8440, tls: { mode: 'auto' }, loginGraceTimeMs: 20_000, maxStartups: { start: 64, rate: 30, full: 256 }, perSourceMaxStartups: 32, maxConnections: 1024, maxConnectionsPerSource: 64, maxConnectionsPerToken: 32 });
  assert.deepEqual(config.audit, { maxFileBytes: 16 * 1024 * 1024, keepFiles: 10, refusalsPerMinute: 60 });
  assert.equal(config.consoles.defaultTtlMs, 86_400_000);
  assert.deepEqual(config.virtualMachines[0], {
    name: 'vm1',
    serial: { kind: 'unix', path: '/run/lifeline/vm1/serial.sock' },
    serialProtocol: 'raw',
    vnc: { kind: 'tcp', host: '127.0.0.1', port: 5901 },
    qmp: { kind: 'unix', path: '/etc/lifeline/vm1/qmp.sock' },
  });
  assert.equal(config.ssh.keepaliveIntervalMs, 15_000);
});

test('an empty document gets every default', () => {
  const config = parseConfig({}, 'x', '/srv');
  assert.equal(config.ssh.port, 2222);
  assert.equal(config.vnc.port, 6080);
  assert.equal(config.endpoints.default.ipAddress, '127.0.0.1');
  assert.deepEqual(config.endpoints.addressPool.map((c) => c.text), ['127.0.0.0/8']);
  assert.deepEqual(config.virtualMachines, []);
});

test('errors carry the key path', () => {
  const keyOf = (document: unknown): string => {
    try {
      parseConfig(document, 'x', '/srv');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.key;
    }
    return '(no error)';
  };
  assert.equal(keyOf({ api: { listen: 'nope' } }), 'api.listen');
  assert.equal(keyOf({ api: 'text' }), 'api');
  assert.equal(keyOf({ virtualMachines: [{ name: 'a', serial: '/a' }, { name: 'b', qmp: 42 }] }), 'virtualMachines[1].qmp');
  assert.equal(keyOf({ virtualMachines: [{ name: 'a', serial: `/${'x'.repeat(120)}` }] }), 'virtualMachines[0].serial');
  assert.equal(keyOf({ log: { level: 'loud' } }), 'log.level');
  assert.equal(keyOf([]), '(top level)');
});

test('serial: a path or tcp:// is raw; telnet://host:port and { path, protocol: telnet } are telnet; anything else is named', () => {
  const vms = (serial: unknown) => parseConfig({ virtualMachines: [{ name: 'vm1', serial }] }, '/etc/l/relay.yaml', '/etc/l').virtualMachines[0];
  assert.deepEqual(vms('tcp://127.0.0.1:4555'), { name: 'vm1', serial: { kind: 'tcp', host: '127.0.0.1', port: 4555 }, serialProtocol: 'raw', vnc: undefined, qmp: undefined });
  assert.deepEqual(vms('telnet://127.0.0.1:4555')?.serial, { kind: 'tcp', host: '127.0.0.1', port: 4555 });
  assert.equal(vms('telnet://127.0.0.1:4555')?.serialProtocol, 'telnet');
  assert.deepEqual(vms({ path: 'vm1/serial.sock', protocol: 'telnet' }), { name: 'vm1', serial: { kind: 'unix', path: '/etc/l/vm1/serial.sock' }, serialProtocol: 'telnet', vnc: undefined, qmp: undefined });
  assert.equal(vms({ path: 'tcp://10.0.0.1:7000' })?.serialProtocol, 'raw');
  assert.throws(() => vms({ path: 'x.sock', protocol: 'ssh' }), /virtualMachines\[0\]\.serial\.protocol: must be raw or telnet/);
  assert.throws(() => vms({ path: 'x.sock', speed: 9600 }), /virtualMachines\[0\]\.serial\.speed: unknown key/);
  assert.throws(() => vms(42), /virtualMachines\[0\]\.serial: must be a socket path, tcp:\/\/host:port, telnet:\/\/host:port or \{ path, protocol \}/);
  assert.throws(() => vms('telnet://nohost'), /virtualMachines\[0\]\.serial: must be tcp:\/\/<host>:<port>/);
});

test('api.tls: auto by default; on/off (also as YAML 1.1 booleans); a mapping with cert and key means on', () => {
  const tls = (value: unknown) => parseConfig({ api: { tls: value } }, 'x', '/srv').api.tls;
  assert.deepEqual(tls(undefined), { mode: 'auto' });
  assert.deepEqual(tls('on'), { mode: 'on' });
  assert.deepEqual(tls('off'), { mode: 'off' });
  assert.deepEqual(tls(true), { mode: 'on' });
  assert.deepEqual(tls(false), { mode: 'off' });
  assert.deepEqual(tls({ cert: 'c.pem', key: 'k.pem' }), { mode: 'on', cert: '/srv/c.pem', key: '/srv/k.pem' });
  assert.deepEqual(tls({ mode: 'auto', cert: 'c.pem', key: 'k.pem' }), { mode: 'auto', cert: '/srv/c.pem', key: '/srv/k.pem' });
  assert.deepEqual(tls({ mode: 'on' }), { mode: 'on' });
  assert.throws(() => tls('yes'), (error: ConfigError) => error.key === 'api.tls' && /auto, on, off/.test(error.message));
  assert.throws(() => tls({ cert: 'c.pem' }), (error: ConfigError) => error.key === 'api.tls.key' && /give both cert and key/.test(error.message));
  assert.throws(() => tls({ mode: 'maybe' }), (error: ConfigError) => error.key === 'api.tls.mode');
  assert.throws(() => tls({ ca: 'x' }), (error: ConfigError) => error.key === 'api.tls.ca');
});

test('pre-auth limits: OpenSSH-like defaults; MaxStartups as start:rate:full', () => {
  const config = parseConfig({}, 'x', '/srv');
  assert.equal(config.ssh.loginGraceTimeMs, 60_000);
  assert.deepEqual(config.ssh.maxStartups, { start: 10, rate: 30, full: 100 });
  assert.equal(config.ssh.perSourceMaxStartups, 8);
  assert.equal(config.vnc.loginGraceTimeMs, 20_000);
  assert.deepEqual(parseConfig({ ssh: { maxStartups: '5:50:20', loginGraceTime: '2m' } }, 'x', '/srv').ssh, { ...config.ssh, maxStartups: { start: 5, rate: 50, full: 20 }, loginGraceTimeMs: 120_000 });
  assert.throws(() => parseConfig({ ssh: { maxStartups: '100:30:10' } }, 'x', '/srv'), (error: ConfigError) => error.key === 'ssh.maxStartups' && /start:rate:full/.test(error.message));
  // The API listener: connections before their first authenticated request.
  assert.equal(config.api.loginGraceTimeMs, 20_000);
  assert.deepEqual(config.api.maxStartups, { start: 64, rate: 30, full: 256 });
  assert.equal(config.api.perSourceMaxStartups, 32);
  const api = parseConfig({ api: { listen: '127.0.0.1:9000', maxStartups: 50, perSourceMaxStartups: 4, loginGraceTime: '5s' } }, 'x', '/srv').api;
  assert.deepEqual([api.port, api.maxStartups, api.perSourceMaxStartups, api.loginGraceTimeMs], [9000, { start: 50, rate: 100, full: 50 }, 4, 5000]);
  assert.throws(() => parseConfig({ api: { perSourceMaxStartups: 0 } }, 'x', '/srv'), (error: ConfigError) => error.key === 'api.perSourceMaxStartups');
  assert.throws(() => parseConfig({ api: { maxStartups: 'lots' } }, 'x', '/srv'), (error: ConfigError) => error.key === 'api.maxStartups');
});
