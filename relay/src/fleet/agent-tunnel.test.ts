import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { fingerprintOf } from '../core/ssh-public-key.js';
import { createLogger } from '../logger.js';
import { generateEd25519 } from '../ssh/host-key.js';
import { AgentTunnelServer, dialGateway, type AgentLink, type ControlMessage } from './agent-tunnel.js';
import ssh2 from 'ssh2';

const log = createLogger('silent');
const hostKey = generateEd25519();
const agentKey = generateEd25519();
const fingerprintOfKey = (privateKey: string): string => {
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) throw parsed;
  return fingerprintOf(parsed.getPublicSSH());
};
const hostFingerprint = fingerprintOfKey(hostKey.private);
const agentFingerprint = fingerprintOfKey(agentKey.private);

const links: AgentLink[] = [];
/** Agents the gateway knows (name → key fingerprint), and the one join token there is. */
const known = new Map([['hv-1', agentFingerprint]]);
let joinToken: string | undefined = 'llj_join-me';
const server = new AgentTunnelServer({
  hostKey: hostKey.private,
  authorize: async (name, fingerprint) => (known.get(name) === fingerprint ? 'allowed' : known.has(name) ? 'refused' : 'join'),
  join: async (name, fingerprint, token) => {
    if (token !== joinToken || known.has(name)) return false;
    joinToken = undefined;
    known.set(name, fingerprint);
    return true;
  },
  onAgent: (link) => links.push(link),
  keepaliveIntervalMs: 15_000,
  keepaliveCountMax: 3,
  log,
});
const port = await server.listen('127.0.0.1', 0);
after(() => server.close());

const dial = (overrides: Partial<Parameters<typeof dialGateway>[0]> = {}, messages: ControlMessage[] = []) =>
  dialGateway({
    host: '127.0.0.1',
    port,
    name: 'hv-1',
    privateKey: agentKey.private,
    hostKeyFingerprint: hostFingerprint,
    keepaliveIntervalMs: 15_000,
    keepaliveCountMax: 3,
    log,
    hello: { type: 'hello', virtualMachines: ['vm1'] },
    onMessage: (message) => messages.push(message),
    onStream: (request, accept, reject) => {
      if (request.virtualMachine !== 'vm1') return reject();
      const stream = accept();
      // A console stand-in: echoes what the gateway writes, after naming the request.
      stream.write(`${request.kind}:${request.fence}\n`);
      stream.pipe(stream);
    },
    ...overrides,
  });

test('an agent dials in: the gateway hears its hello, they exchange control messages, and streams carry bytes both ways', async () => {
  const messages: ControlMessage[] = [];
  const agent = await dial({}, messages);
  try {
    while (links.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const link = links[0]!;
    assert.equal(link.name, 'hv-1');
    assert.equal(link.keyFingerprint, agentFingerprint);
    const hello = new Promise<ControlMessage>((resolve) => link.onMessage(resolve));
    assert.deepEqual(await hello, { type: 'hello', virtualMachines: ['vm1'] });
    link.send({ type: 'revoke', virtualMachine: 'vm1' });
    while (messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(messages, [{ type: 'revoke', virtualMachine: 'vm1' }]);

    const stream = await link.openStream({ kind: 'serial', virtualMachine: 'vm1', fence: 7, session: 's1' });
    let received = '';
    stream.on('data', (chunk: Buffer) => (received += chunk.toString()));
    stream.write('ping\n');
    while (!received.includes('ping')) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(received, 'serial:7\nping\n');
    await assert.rejects(link.openStream({ kind: 'vnc', virtualMachine: 'unknown', fence: 8, session: 's2' }));
    stream.end();

    const gone = new Promise<void>((resolve) => link.onClose(resolve));
    agent.close();
    await gone;
  } finally {
    agent.close();
  }
});

test('an agent refuses a gateway with another host key, and a gateway refuses an unknown agent or key', async () => {
  const other = generateEd25519();
  await assert.rejects(dial({ hostKeyFingerprint: fingerprintOfKey(other.private) }), /presented the host key SHA256:\S+, not the fleet's/);
  await assert.rejects(dial({ name: 'hv-2' }), /does not know agent hv-2 with this key/);
  await assert.rejects(dial({ privateKey: other.private }), /does not know agent hv-1 with this key/);
});

test('a new agent joins once with its join token: the token is single-use and the key is the agent\'s from then on', async () => {
  const key = generateEd25519();
  await assert.rejects(dial({ name: 'hv-3', privateKey: key.private, joinToken: 'llj_wrong' }), /refused the join token for agent hv-3/);
  const joined = await dial({ name: 'hv-3', privateKey: key.private, joinToken: 'llj_join-me' });
  joined.close();
  assert.equal(known.get('hv-3'), fingerprintOfKey(key.private));
  // Known now: no token needed; the used token joins nobody else.
  const again = await dial({ name: 'hv-3', privateKey: key.private });
  again.close();
  await assert.rejects(dial({ name: 'hv-4', privateKey: generateEd25519().private, joinToken: 'llj_join-me' }), /refused the join token/);
  // A name taken by another key cannot be joined over.
  await assert.rejects(dial({ name: 'hv-3', privateKey: generateEd25519().private, joinToken: 'llj_join-me' }), /does not know agent hv-3 with this key/);
});

test('the gateway offers the agent no shell and no other forward', async () => {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject).connect({ host: '127.0.0.1', port, username: 'hv-1', privateKey: agentKey.private });
  });
  try {
    const exec = await new Promise((resolve) => client.exec('sh', (error) => resolve(error ? 'refused' : 'accepted')));
    assert.equal(exec, 'refused');
    const forward = await new Promise((resolve) => client.forwardIn('0.0.0.0', 8080, (error) => resolve(error ? 'refused' : 'accepted')));
    assert.equal(forward, 'refused');
  } finally {
    client.end();
  }
});
