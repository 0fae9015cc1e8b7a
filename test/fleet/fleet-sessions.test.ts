import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import type ssh2 from 'ssh2';
import { hashToken } from '../../relay/src/core/token-hash.js';
import { parseSshPublicKey } from '../../relay/src/ssh/key-policy.js';
import { SqliteStore } from '../../relay/src/store/sqlite-store.js';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { FLEET_ENV, startAgent, startFleet, type AgentProcess, type TestFleet } from '../helpers/fleet.js';
import { generateKey, OpenSshSession, type KeyPair } from '../helpers/openssh.js';
import { RELAY_BIN } from '../helpers/relay-process.js';
import { describeRounds, revocationRounds } from '../helpers/revocations.js';
import { openSsh2Shell } from '../helpers/ssh2-shell.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * A fleet as an operator runs it: PostgreSQL, two gateway processes and two agent processes, each
 * agent serving a console stand-in (a unix socket that echoes, as a serial chardev would). VM owners
 * connect with OpenSSH to either gateway.
 */
describe('a fleet: two gateways, two agents', () => {
  const dir = tempDir('fleet');
  let fleet: TestFleet;
  const consoles: FakeConsole[] = [];
  const agents: Record<string, AgentProcess> = {};
  const sessions: OpenSshSession[] = [];
  let key: KeyPair;
  let otherKey: KeyPair;
  let accessId: string;

  const open = async (gateway: number, marker: string): Promise<OpenSshSession> => {
    const session = new OpenSshSession({ port: fleet.gateways[gateway]!.sshPort, user: accessId, key: key.privateKeyPath });
    sessions.push(session);
    // The stand-in echoes: typed text coming back means the session reaches the VM.
    await session.echo(marker);
    return session;
  };

  before(async () => {
    // 20 revocation rounds of 3 kinds open 60 sessions of one console within a minute: above the default budget (6 × maxSessions a minute).
    fleet = await startFleet(dir.path, 2, { gatewaySettings: { ssh: { port: 0, maxSessions: 20 } } });
    for (const name of ['vm-a1', 'vm-b1']) consoles.push(await startFakeConsole(join(dir.path, `${name}.sock`), 0));
    agents.a = await fleet.addAgent('hv-a', { virtualMachines: [{ name: 'vm-a1', serial: join(dir.path, 'vm-a1.sock') }] });
    agents.b = await fleet.addAgent('hv-b', { virtualMachines: [{ name: 'vm-b1', serial: join(dir.path, 'vm-b1.sock') }] });
    await fleet.waitForAgent('hv-a');
    await fleet.waitForAgent('hv-b');
    // An agent is connected before its consoles are: each VM reads Running once the agent's serial attachment is up and announced.
    await waitUntil(async () => {
      for (const gateway of fleet.gateways) {
        const vms = (await gateway.api('GET', '/v1/virtualMachines')).body.value as Array<{ powerState: string }>;
        if (vms.length !== 2 || vms.some((vm) => vm.powerState !== 'Running')) return false;
      }
      return true;
    }, 20_000, 'both VMs Running on every gateway');
    key = generateKey(dir.path, 'owner');
    otherKey = generateKey(dir.path, 'other');
    const put = await fleet.gateways[1]!.api('PUT', '/v1/virtualMachines/vm-a1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    accessId = put.body.virtualMachineAccessId;
  });
  after(async () => {
    for (const session of sessions) session.close();
    for (const agent of Object.values(agents)) await agent.stop('SIGKILL');
    await fleet?.dispose();
    for (const console of consoles) console.close();
    dir.dispose();
  });

  test('every gateway lists every agent\'s VMs with their agent, and the agents with their tunnels; an agent listens on no port', async () => {
    for (const gateway of fleet.gateways) {
      const vms = (await gateway.api('GET', '/v1/virtualMachines')).body.value;
      assert.deepEqual(
        vms.map((vm: { name: string; agent: string; powerState: string }) => [vm.name, vm.agent, vm.powerState]),
        [['vm-a1', 'hv-a', 'Running'], ['vm-b1', 'hv-b', 'Running']],
      );
      const listed = (await gateway.api('GET', '/v1/agents')).body.value;
      assert.deepEqual(listed.map((agent: { name: string; state: string; virtualMachines: string[] }) => [agent.name, agent.state, agent.virtualMachines]), [['hv-a', 'Connected', ['vm-a1']], ['hv-b', 'Connected', ['vm-b1']]]);
      for (const agent of listed) assert.deepEqual([...agent.gateways].sort(), [...fleet.agentAddresses].sort(), 'each agent learned the other gateway and holds a tunnel to both');
    }
    const listening = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
    for (const agent of Object.values(agents)) assert.doesNotMatch(listening, new RegExp(`pid=${agent.child.pid},`), 'an agent listens on nothing');
    assert.match(listening, new RegExp(`pid=${fleet.gateways[0]!.child.pid},`), 'while a gateway does (the check can see listeners)');
  });

  test('lifeline-relay info reads a gateway\'s identity from the database and an agent\'s from its data folder', async () => {
    const relay = (await fleet.gateways[1]!.api('GET', '/v1/relay')).body;
    const run = (configPath: string): Record<string, any> => {
      const result = spawnSync(process.execPath, [RELAY_BIN, 'info', '--config', configPath, '--json'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...FLEET_ENV } });
      assert.equal(result.status, 0, result.stderr);
      return JSON.parse(result.stdout);
    };
    const gateway = run(fleet.gateways[0]!.configPath);
    assert.equal(gateway.role, 'gateway');
    assert.equal(gateway.relayId, relay.id);
    assert.equal(gateway.sshHostKey, relay.sshHostKeys[0].fingerprint);
    assert.equal(gateway.agents, 2);
    assert.deepEqual([...gateway.gatewaysAlive].sort(), [...fleet.agentAddresses].sort());
    const agent = run(join(dir.path, 'hv-a.json'));
    const listed = (await fleet.gateways[0]!.api('GET', '/v1/agents')).body.value.find((entry: { name: string }) => entry.name === 'hv-a');
    assert.equal(agent.name, 'hv-a');
    assert.equal(agent.agentKey, listed.keyFingerprint);
    assert.equal(agent.fleetHostKey, relay.sshHostKeys[0].fingerprint);
    assert.equal(agent.fleetHostKeySource, 'agent.caFingerprint');
  });

  test('a VM on agent A opened through gateway 1, then through gateway 2: the first is closed with the reason within 500 ms', async () => {
    const first = await open(0, 'one-');
    const displaced = first.waitFor(/session closed: another session was opened for vm-a1 \(session [0-9a-f]{8} from 127\.0\.0\.1 via SSH\)/, 15_000).then(() => Date.now());
    // The second through ssh2's client, which says when its shell is open: the bound runs from there.
    const second = await openSsh2Shell({ port: fleet.gateways[1]!.sshPort, user: accessId, privateKey: readFileSync(key.privateKeyPath) });
    const opened = Date.now();
    try {
      const closedAfter = (await displaced) - opened;
      process.stdout.write(`# the first session read its reason ${closedAfter} ms after the second's shell opened\n`);
      assert.ok(closedAfter < 500, `displaced after ${closedAfter} ms`);
      let echoed = '';
      second.shell.on('data', (chunk: Buffer) => (echoed += chunk.toString()));
      await waitUntil(() => {
        second.shell.write('two-');
        return echoed.includes('two-');
      }, 15_000, 'the second session to echo');
      await first.exited;
    } finally {
      second.client.end();
    }
  });

  test('GET /v1/sessions on any gateway lists the fleet\'s sessions with the gateway holding each; DELETE through another gateway closes it', async () => {
    const held = await open(0, 'listed-');
    const find = async (gateway: number): Promise<Record<string, any> | undefined> =>
      ((await fleet.gateways[gateway]!.api('GET', '/v1/sessions')).body.value as Array<Record<string, any>>).find((session) => session.virtualMachine === 'vm-a1' && session.kind === 'serial');
    const here = await find(0);
    assert.equal(here?.gateway, fleet.agentAddresses[0]);
    // Gateway 2 sees it too, with the byte counts gateway 1 writes at each reconcile (every 2 s).
    const there = await waitUntil(async () => {
      const found = await find(1);
      return found && found.bytesIn > 0 ? found : undefined;
    }, 10_000, 'gateway 2 to list the session with its byte counts');
    assert.equal(there.id, here!.id, 'one id for the session on every gateway');
    assert.equal(there.gateway, fleet.agentAddresses[0]);
    assert.equal(there.endpoint, 'default');
    assert.equal((await fleet.gateways[1]!.api('DELETE', `/v1/sessions/${there.id}`)).status, 204);
    const asked = Date.now();
    await held.waitFor('session closed: closed by an administrator', 5_000);
    assert.ok(Date.now() - asked < 1000, `closed ${Date.now() - asked} ms after the DELETE answered`);
    assert.equal((await fleet.gateways[1]!.api('DELETE', '/v1/sessions/00000000-0000-0000-0000-000000000000')).status, 404);
  });

  test('a private endpoint made through gateway 2 is served by gateway 1 too, and deleting it there closes gateway 1\'s sessions on it', async () => {
    const made = await fleet.gateways[1]!.api('PUT', '/v1/privateEndpoints/ops', { ipAddress: '127.0.0.77', allowedSourcePrefixes: ['127.0.0.0/8'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const onGateway1 = await waitUntil(async () => {
      const found = (await fleet.gateways[0]!.api('GET', '/v1/privateEndpoints/ops')).body;
      return found?.provisioningState === 'Succeeded' ? found : undefined;
    }, 5_000, 'gateway 1 to listen on the endpoint');
    assert.equal(onGateway1.ipAddress, '127.0.0.77');
    const session = new OpenSshSession({ port: onGateway1.sshPort, host: '127.0.0.77', user: accessId, key: key.privateKeyPath });
    sessions.push(session);
    await session.echo('via-ops-');
    assert.equal((await fleet.gateways[1]!.api('DELETE', '/v1/privateEndpoints/ops')).status, 204);
    await session.waitFor('session closed: the private endpoint "ops" was deleted', 5_000);
    assert.equal((await fleet.gateways[0]!.api('GET', '/v1/privateEndpoints/ops')).status, 404);
    for (const gateway of fleet.gateways) assert.equal((await fetch(`${gateway.apiUrl}/healthz`)).status, 200);
  });

  test('disable, re-key and expiry through gateway 2 close a session held on gateway 1 within 1 s, with the reason (20 times each)', async () => {
    const rounds = await revocationRounds({ open: (marker) => open(0, marker), via: fleet.gateways[1]!, vm: 'vm-a1', keys: { own: key.publicKey, other: otherKey.publicKey }, rounds: 20 });
    process.stdout.write(`# held on gateway 1, changed through gateway 2: ${describeRounds(rounds)}\n`);
    for (const [kind, times] of Object.entries(rounds)) for (const time of times) assert.ok(time < 1000, `${kind}: ${times.join(', ')} ms`);
  });

  test('200 racing opens of one VM across both gateways leave exactly one session, in the database too', async () => {
    const privateKey = readFileSync(key.privateKeyPath);
    const clients: ssh2.Client[] = [];
    try {
      const opened = await Promise.allSettled(
        Array.from({ length: 200 }, (_, index) =>
          // From 50 loopback addresses, so the per-source pre-auth cap does not queue them.
          openSsh2Shell({ port: fleet.gateways[index % 2]!.sshPort, user: accessId, privateKey, localAddress: `127.0.1.${(index % 50) + 1}` }).then((result) => {
            clients.push(result.client);
            return result.shell;
          }),
        ),
      );
      const shells = opened.filter((result): result is PromiseFulfilledResult<ssh2.ClientChannel> => result.status === 'fulfilled').map((result) => result.value);
      // Most connections get a shell (the rest meet the gateways' MaxStartups): a real race, not a queue.
      assert.ok(shells.length >= 50, `${shells.length} of 200 opens got a shell`);
      process.stdout.write(`# ${shells.length} of 200 racing opens got a shell\n`);
      const open = new Set(shells);
      const said = new Map<ssh2.ClientChannel, string>();
      for (const shell of shells) {
        shell.once('close', () => open.delete(shell));
        shell.on('data', (chunk: Buffer) => said.set(shell, (said.get(shell) ?? '') + chunk.toString()));
      }
      await waitUntil(() => open.size <= 1, 20_000, 'every displaced shell to close').catch((error: Error) => {
        throw new Error(`${error.message}: ${open.size} of ${shells.length} still open; they were told ${JSON.stringify([...open].slice(0, 5).map((shell) => said.get(shell) ?? ''))}`);
      });
      // Settled: no late close is still on its way.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(open.size, 1, 'exactly one session holds the VM');
      const sql = postgres(fleet.url, { max: 1, onnotice: () => {} });
      try {
        const slots = await sql`SELECT count(*)::int AS n FROM session_slots WHERE virtual_machine = 'vm-a1' AND kind = 'serial'`;
        assert.equal(slots[0]!.n, 1);
      } finally {
        await sql.end();
      }
    } finally {
      for (const client of clients) client.end();
    }
  });

  test('a second agent announcing a VM name another agent holds has it refused, logged on both sides and shown; DELETE /v1/agents removes an agent and refuses it', async () => {
    const impostor = await fleet.addAgent('hv-c', { virtualMachines: [{ name: 'vm-a1', serial: join(dir.path, 'vm-c0.sock') }, { name: 'vm-c1', serial: join(dir.path, 'vm-c1.sock') }] });
    try {
      await fleet.waitForAgent('hv-c');
      await conflictAndDeletion(impostor);
    } finally {
      await impostor.stop('SIGKILL');
    }
  });

  /** hv-c announced vm-a1 (hv-a's) and vm-c1: refused and shown; then deleted. */
  const conflictAndDeletion = async (impostor: AgentProcess): Promise<void> => {
    for (const gateway of fleet.gateways) {
      const listed = (await gateway.api('GET', '/v1/agents')).body.value.find((agent: { name: string }) => agent.name === 'hv-c');
      assert.deepEqual(listed.conflicts, [{ name: 'vm-a1', heldBy: 'hv-a' }]);
      assert.deepEqual(listed.virtualMachines, ['vm-c1']);
      assert.equal((await gateway.api('GET', '/v1/virtualMachines/vm-a1')).body.agent, 'hv-a', 'the name stays with the agent that had it');
    }
    await waitUntil(() => impostor.output().includes('the fleet refused VM vm-a1: agent hv-a already has a VM of that name'), 10_000, 'the agent to log the refusal');
    assert.match(fleet.gateways[0]!.output() + fleet.gateways[1]!.output(), /agent announced a VM name another agent holds: refused/);

    assert.equal((await fleet.gateways[1]!.api('DELETE', '/v1/agents/hv-c')).status, 204);
    assert.equal((await fleet.gateways[1]!.api('DELETE', '/v1/agents/hv-c')).status, 404);
    for (const gateway of fleet.gateways) {
      await waitUntil(async () => (await gateway.api('GET', '/v1/virtualMachines/vm-c1')).status === 404, 5_000, 'vm-c1 to leave every gateway');
      assert.ok(!(await gateway.api('GET', '/v1/agents')).body.value.some((agent: { name: string }) => agent.name === 'hv-c'));
    }
    // Its tunnels are closed, and it is refused from now on: its key is no longer the agent's, and its join token was used up.
    await waitUntil(() => /tunnel to the gateway lost/.test(impostor.output()), 10_000, 'the deleted agent\'s tunnel to close');
    await waitUntil(() => /refused the join token for agent hv-c: .*a deleted agent needs a new token/.test(impostor.output()), 20_000, 'the deleted agent to be refused');
  };

  test('store import brings a standalone relay\'s console and token in: the old access id works through a gateway, and a second import changes nothing', async () => {
    const storeFile = join(dir.path, 'standalone-data', 'lifeline.db');
    mkdirSync(join(dir.path, 'standalone-data'));
    const standalone = new SqliteStore(storeFile);
    const parsed = parseSshPublicKey(key.publicKey);
    assert.ok(parsed.ok);
    const now = Date.now();
    const oldAccessId = randomUUID();
    await standalone.putConsole({ virtualMachine: 'vm-b1', enabled: true, keyData: parsed.key.canonical, keyFingerprint: parsed.key.fingerprint, expiration: now + 3_600_000, accessId: oldAccessId, createdAt: now, updatedAt: now });
    const secret = 'llt_importedTokenFromTheStandaloneRelay0123456789abcdef';
    await standalone.createToken({ id: randomUUID(), hash: hashToken(secret), name: 'ops-reader', prefix: secret.slice(0, 10), scopes: ['consoles:read'], createdAt: now });
    await standalone.close();
    const run = (): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, [RELAY_BIN, 'store', 'import', '--config', fleet.gateways[0]!.configPath, '--from', storeFile], { encoding: 'utf8', timeout: 30_000 });
    const first = run();
    assert.equal(first.status, 0, first.stdout + first.stderr);
    assert.match(first.stdout, /^imported 1 console \(access ids kept\), 0 endpoints, 1 API token from /);
    const session = new OpenSshSession({ port: fleet.gateways[1]!.sshPort, user: oldAccessId, key: key.privateKeyPath });
    sessions.push(session);
    await session.echo('imported-');
    session.close();
    const listed = await fetch(`${fleet.gateways[1]!.apiUrl}/v1/virtualMachines`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(listed.status, 200, 'the imported token works on the fleet');
    const second = run();
    assert.equal(second.status, 0);
    assert.match(second.stdout, /^imported 0 consoles .* 0 API tokens/);
    assert.match(second.stdout, /skipped console vm-b1: the fleet already has a console for vm-b1 \(the same one: imported before\)/);
  });

  test('an agent killed: its clients hear why within 1 s, its VMs read Unavailable, and they come back with the same access ids', async () => {
    const put = await fleet.gateways[0]!.api('PUT', '/v1/virtualMachines/vm-b1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    const bAccessId = put.body.virtualMachineAccessId;
    const session = new OpenSshSession({ port: fleet.gateways[0]!.sshPort, user: bAccessId, key: key.privateKeyPath });
    sessions.push(session);
    await session.echo('b-');
    const killed = Date.now();
    await agents.b!.stop('SIGKILL');
    await session.waitFor(/session closed: .*hv-b/, 5_000);
    assert.ok(Date.now() - killed < 1000, `told after ${Date.now() - killed} ms`);
    for (const gateway of fleet.gateways) {
      const vm = (await gateway.api('GET', '/v1/virtualMachines/vm-b1')).body;
      assert.equal(vm.powerState, 'Unavailable');
      assert.equal(vm.console.virtualMachineAccessId, bAccessId, 'its console stays');
    }
    await waitUntil(async () => (await fleet.gateways[0]!.api('GET', '/v1/agents')).body.value.find((agent: { name: string }) => agent.name === 'hv-b').state === 'Disconnected', 5_000, 'hv-b to read Disconnected');
    // Back, known by its key now (the join token was used up at its first start).
    agents.b = await startAgent(join(dir.path, 'hv-b.json'));
    await fleet.waitForAgent('hv-b');
    const again = new OpenSshSession({ port: fleet.gateways[1]!.sshPort, user: bAccessId, key: key.privateKeyPath });
    sessions.push(again);
    await again.echo('back-');
  });
});
