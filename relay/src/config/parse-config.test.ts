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
  assert.deepEqual(config.api, { host: '127.0.0.1', port: 8440, tls: undefined });
  assert.equal(config.consoles.defaultTtlMs, 86_400_000);
  assert.deepEqual(config.virtualMachines[0], {
    name: 'vm1',
    serial: { kind: 'unix', path: '/run/lifeline/vm1/serial.sock' },
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
