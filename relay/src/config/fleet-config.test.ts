import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RelayConfig } from './config.js';
import { checkFleet } from './fleet-config.js';
import { ConfigError, parseConfig } from './parse-config.js';

const parse = (document: Record<string, unknown>): RelayConfig => parseConfig(document, 'relay.yaml', '/etc/lifeline');
const refused = (run: () => unknown, key: string, message: RegExp): void =>
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.key, key);
    assert.match(error.message, message);
    return true;
  });

test('role is standalone by default and then takes no fleet keys', () => {
  assert.equal(parse({}).role, 'standalone');
  assert.equal(parse({}).gateway, undefined);
  refused(() => parse({ store: { postgres: { url: 'postgres://db/lifeline' } } }), 'store', /setting of role: gateway .*role is standalone/);
  refused(() => parse({ gateways: ['gw:3024'] }), 'gateways', /role: agent/);
  refused(() => parse({ role: 'fleet' }), 'role', /must be one of standalone, gateway, agent/);
});

test('a gateway: its database from the file or LIFELINE_POSTGRES_URL, agents on 3024, no VMs of its own', () => {
  const config = parse({ role: 'gateway', store: { postgres: { url: 'postgres://lifeline@db:5432/lifeline' } } });
  checkFleet(config, {});
  assert.deepEqual(config.gateway, { postgresUrl: 'postgres://lifeline@db:5432/lifeline', agentsListen: { host: '0.0.0.0', port: 3024 } });

  const fromEnv = parse({ role: 'gateway', agents: { listen: '127.0.0.1:4000' } });
  checkFleet(fromEnv, { LIFELINE_POSTGRES_URL: 'postgresql://other/db' });
  assert.equal(fromEnv.gateway?.postgresUrl, 'postgresql://other/db');
  assert.deepEqual(fromEnv.gateway?.agentsAdvertise, { host: '127.0.0.1', port: 4000 }, 'a specific listen address is what agents are given');

  refused(() => checkFleet(parse({ role: 'gateway' }), {}), 'store.postgres.url', /needed with role: gateway.*LIFELINE_POSTGRES_URL/);
  refused(() => checkFleet(parse({ role: 'gateway' }), { LIFELINE_POSTGRES_URL: 'mysql://x' }), 'LIFELINE_POSTGRES_URL', /PostgreSQL URL/);
  refused(() => parse({ role: 'gateway', store: { postgres: { url: 'http://db' } } }), 'store.postgres.url', /PostgreSQL URL/);
  refused(() => parse({ role: 'gateway', agents: { listen: 'gw.example.com:3024' } }), 'agents.listen', /an address of this host/);
  refused(
    () => checkFleet(parse({ role: 'gateway', store: { postgres: { url: 'postgres://db/x' } }, virtualMachines: [{ name: 'vm1', serial: '/run/vm1.sock' }] }), {}),
    'virtualMachines',
    /holds no VM sockets.*agent/,
  );
  const advertised = parse({ role: 'gateway', store: { postgres: { url: 'postgres://db/x' } }, agents: { advertiseAddress: '[fd00::10]:3024' } });
  assert.deepEqual(advertised.gateway?.agentsAdvertise, { host: 'fd00::10', port: 3024 });
});

test('an agent: a name, at least one gateway, the join token from the file or LIFELINE_JOIN_TOKEN', () => {
  const config = parse({ role: 'agent', agent: { name: 'hv-1' }, gateways: ['gw-1.example.com:3024', '[::1]:3025', '127.0.0.1:3024'], joinToken: 'lljoin_a' });
  checkFleet(config, { LIFELINE_JOIN_TOKEN: 'lljoin_b' });
  assert.deepEqual(config.agent, {
    name: 'hv-1',
    gateways: [{ host: 'gw-1.example.com', port: 3024 }, { host: '::1', port: 3025 }, { host: '127.0.0.1', port: 3024 }],
    joinToken: 'lljoin_b',
  });
  // The name may come from the environment (a Kubernetes node name); without either it is refused.
  refused(() => checkFleet(parse({ role: 'agent', gateways: ['gw:3024'] }), {}), 'agent.name', /needed with role: agent.*LIFELINE_AGENT_NAME/);
  const named = parse({ role: 'agent', gateways: ['gw:3024'], joinTokenFile: '/etc/lifeline-join/{agent}' });
  checkFleet(named, { LIFELINE_AGENT_NAME: 'node-7' });
  assert.equal(named.agent?.name, 'node-7');
  assert.equal(named.agent?.joinTokenFile, '/etc/lifeline-join/{agent}');
  refused(() => checkFleet(parse({ role: 'agent', gateways: ['gw:3024'] }), { LIFELINE_AGENT_NAME: 'node 7' }), 'LIFELINE_AGENT_NAME', /letters, digits/);
  refused(() => parse({ role: 'agent', agent: { name: 'hv-1' } }), 'gateways', /at least one gateway/);
  refused(() => parse({ role: 'agent', agent: { name: 'hv-1' }, gateways: ['gw'] }), 'gateways[0]', /<host>:<port>/);
  refused(() => parse({ role: 'agent', agent: { name: 'hv 1' }, gateways: ['gw:1'] }), 'agent.name', /letters, digits/);
  refused(() => parse({ role: 'agent', agent: { name: 'hv-1', caFingerprint: 'abc' }, gateways: ['gw:1'] }), 'agent.caFingerprint', /SHA256/);
  refused(() => parse({ role: 'agent', agent: { name: 'hv-1' }, gateways: ['gw:1'], store: { postgres: { url: 'postgres://db/x' } } }), 'store', /role: gateway/);
});
