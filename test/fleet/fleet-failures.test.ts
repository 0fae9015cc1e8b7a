import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import postgres from 'postgres';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { startFleet, type AgentProcess, type TestFleet } from '../helpers/fleet.js';
import { generateKey, OpenSshSession, sshOnce, type KeyPair } from '../helpers/openssh.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { describeRounds, revocationRounds } from '../helpers/revocations.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * What each failure looks like to a user of a fleet: a gateway cut off from the database, the
 * database down, an agent frozen, a gateway killed. Gateway 1 reaches PostgreSQL through a TCP
 * proxy the test can cut; the agent is configured with gateway 2 only and learns gateway 1.
 */
describe('a fleet when parts of it fail', () => {
  const dir = tempDir('fleet-fail');
  let fleet: TestFleet;
  let proxy: TcpProxy;
  let agent: AgentProcess;
  const consoles: FakeConsole[] = [];
  const sessions: OpenSshSession[] = [];
  let key: KeyPair;
  let otherKey: KeyPair;
  let accessId: string;

  /** A session through `gateway` that echoes; with `attempts` > 1, a new ssh when one is refused (the gateway's pool may meet a connection the last cut broke). */
  const open = async (gateway: number, marker: string, attempts = 1): Promise<OpenSshSession> => {
    for (let attempt = 1; ; attempt++) {
      const session = new OpenSshSession({ port: fleet.gateways[gateway]!.sshPort, user: accessId, key: key.privateKeyPath });
      sessions.push(session);
      try {
        await session.echo(marker, attempts > 1 ? 5_000 : 15_000);
        return session;
      } catch (error) {
        session.close();
        if (attempt >= attempts) throw error;
      }
    }
  };
  const ready = async (gateway: number): Promise<number> => (await fetch(`${fleet.gateways[gateway]!.apiUrl}/healthz`)).status;

  before(async () => {
    // 20 revocation rounds of 3 kinds open 60 sessions of one console within a minute: above the default budget (6 × maxSessions a minute).
    fleet = await startFleet(dir.path, 2, {
      gatewaySettings: { ssh: { port: 0, maxSessions: 20 } },
      databaseUrl: async (gateway, url, pg) => {
        if (gateway !== 0) return url;
        proxy = await startTcpProxy(pg.port);
        return url.replace(`:${pg.port}/`, `:${proxy.port}/`);
      },
    });
    consoles.push(await startFakeConsole(join(dir.path, 'vm-1.sock'), 0));
    agent = await fleet.addAgent('hv-1', { virtualMachines: [{ name: 'vm-1', serial: join(dir.path, 'vm-1.sock') }], gateways: [fleet.agentAddresses[1]] });
    await fleet.waitForAgent('hv-1');
    key = generateKey(dir.path, 'owner');
    otherKey = generateKey(dir.path, 'other');
    const put = await fleet.gateways[1]!.api('PUT', '/v1/virtualMachines/vm-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    accessId = put.body.virtualMachineAccessId;
  });
  after(async () => {
    for (const session of sessions) session.close();
    await agent?.stop('SIGKILL');
    await fleet?.dispose();
    await proxy?.close();
    for (const console of consoles) console.close();
    dir.dispose();
  });

  test('a gateway cut off from the database: not ready, new sessions told why, and a disable made through another gateway still closes its session within 1 s', async () => {
    const held = await open(0, 'held-');
    proxy.cut();
    try {
      await waitUntil(async () => (await ready(0)) === 503, 10_000, 'gateway 1 to report not ready');
      assert.equal(await ready(1), 200, 'the other gateway is ready');
      await held.echo('still-');
      const refused = await sshOnce({ port: fleet.gateways[0]!.sshPort, user: accessId, key: key.privateKeyPath, logLevel: 'INFO' });
      assert.notEqual(refused.code, 0);
      assert.match(refused.output, /\[lifeline\] the control plane \(the fleet database\) is unreachable from this gateway/);
      const started = Date.now();
      assert.equal((await fleet.gateways[1]!.api('PATCH', '/v1/virtualMachines/vm-1/console', { enabled: false })).status, 200);
      await held.waitFor('session closed: the console for vm-1 was disabled', 5_000);
      const latency = Date.now() - started;
      assert.ok(latency < 1000, `closed after ${latency} ms`);
    } finally {
      proxy.restore();
    }
    const back = Date.now();
    await waitUntil(async () => (await ready(0)) === 200, 10_000, 'gateway 1 to be ready again');
    assert.ok(Date.now() - back < 5000, `ready ${Date.now() - back} ms after the line came back`);
    assert.equal((await fleet.gateways[0]!.api('PATCH', '/v1/virtualMachines/vm-1/console', { enabled: true })).status, 200);
    (await open(0, 'again-')).close();
  });

  test('with gateway 1 cut off from the database, disable, re-key and expiry through gateway 2 still close its session within 1 s (20 times each)', async () => {
    const rounds = await revocationRounds({
      open: (marker) => open(0, marker, 3),
      via: fleet.gateways[1]!,
      vm: 'vm-1',
      keys: { own: key.publicKey, other: otherKey.publicKey },
      rounds: 20,
      around: {
        before: async () => proxy.cut(),
        after: async () => {
          proxy.restore();
          await waitUntil(async () => (await ready(0)) === 200, 10_000, 'gateway 1 to reach the database again');
        },
      },
    });
    process.stdout.write(`# held on gateway 1 (cut off from the database), changed through gateway 2: ${describeRounds(rounds)}\n`);
    for (const [kind, times] of Object.entries(rounds)) for (const time of times) assert.ok(time < 1000, `${kind}: ${times.join(', ')} ms`);
  });

  test('PostgreSQL stopped for 15 s: a live session goes on byte-exact, writes answer 503, new sessions are refused with why; all resumes within 5 s', async () => {
    const live = await open(1, 'live-');
    fleet.pg.stop('fast');
    let stoppedAt = Date.now();
    try {
      await waitUntil(async () => (await ready(1)) === 503, 10_000, 'gateway 2 to report not ready');
      const write = await fleet.gateways[1]!.api('PATCH', '/v1/virtualMachines/vm-1/console', { enabled: false });
      assert.equal(write.status, 503, JSON.stringify(write.body));
      assert.equal(write.body.error.code, 'StoreUnavailable');
      const refused = await sshOnce({ port: fleet.gateways[1]!.sshPort, user: accessId, key: key.privateKeyPath, logLevel: 'INFO' });
      assert.match(refused.output, /control plane \(the fleet database\) is unreachable/);
      // Every byte typed comes back, in order, all through the outage.
      let sent = '';
      while (Date.now() - stoppedAt < 15_000) {
        const line = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}|`;
        sent += line;
        await live.echo(line, 5_000);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      assert.ok(live.output.includes(sent.slice(-200)), 'the tail of what was typed came back intact');
    } finally {
      fleet.pg.start();
      stoppedAt = Date.now();
    }
    // Both asked at once, so the time measured is the gateways' and not that of polling them one after the other.
    await waitUntil(async () => (await Promise.all([ready(0), ready(1)])).every((status) => status === 200), 10_000, 'both gateways to be ready again');
    assert.ok(Date.now() - stoppedAt < 5000, `ready ${Date.now() - stoppedAt} ms after the database was back`);
    await live.echo('after-');
    live.close();
  });

  test('an agent frozen (SIGSTOP): its client hears why within 15 s (keepalive), and its VM reads Unavailable', async () => {
    const frozen = await open(0, 'frozen-');
    process.kill(agent.child.pid!, 'SIGSTOP');
    const started = Date.now();
    try {
      await frozen.waitFor(/session closed: .*hv-1/, 20_000);
      const took = Date.now() - started;
      assert.ok(took < 15_000, `told after ${took} ms`);
      const vm = (await fleet.gateways[0]!.api('GET', '/v1/virtualMachines/vm-1')).body;
      assert.equal(vm.powerState, 'Unavailable');
    } finally {
      process.kill(agent.child.pid!, 'SIGCONT');
    }
    await fleet.waitForAgent('hv-1');
  });

  test('a gateway killed with -9: the other takes new sessions at once, its stale slots are cleared within 15 s, and the agent stops dialling it', async () => {
    await open(0, 'doomed-');
    const sql = postgres(fleet.url, { max: 1, onnotice: () => {} });
    try {
      const [{ id: doomedId }] = (await sql`SELECT gateway AS id FROM session_slots WHERE virtual_machine = 'vm-1'`) as unknown as [{ id: string }];
      await fleet.gateways[0]!.stop('SIGKILL');
      const killed = Date.now();
      (await open(1, 'survivor-')).close();
      assert.ok(Date.now() - killed < 5000, 'a new session through the other gateway at once');
      await waitUntil(async () => Number((await sql`SELECT count(*) AS n FROM gateways WHERE id = ${doomedId}`)[0]!.n) === 0, 20_000, 'the killed gateway to be cleared');
      assert.ok(Date.now() - killed < 15_000, `cleared after ${Date.now() - killed} ms`);
      assert.equal(Number((await sql`SELECT count(*) AS n FROM session_slots WHERE gateway = ${doomedId}`)[0]!.n), 0);
      await waitUntil(() => agent.output().includes('the fleet no longer lists this gateway: stopped dialling it'), 10_000, 'the agent to stop dialling the killed gateway');
    } finally {
      await sql.end();
    }
  });
});
