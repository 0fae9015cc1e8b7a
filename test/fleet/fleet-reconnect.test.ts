import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { VirtualMachineRegistry } from '../../relay/src/backends/virtual-machines.js';
import { AgentStreams } from '../../relay/src/fleet/agent-streams.js';
import { GatewayDialer } from '../../relay/src/fleet/gateway-dialer.js';
import { createLogger } from '../../relay/src/logger.js';
import { generateEd25519 } from '../../relay/src/ssh/host-key.js';
import { FLEET_ENV, startFleet, type TestFleet } from '../helpers/fleet.js';
import { startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

const AGENTS = 200;

/*
 * 200 simulated agents (the agent's own dialer, in this process, each with its own key and join
 * token, no VMs) on one gateway process. The gateway restarts: they must not all come back in the
 * same second (a reconnect storm), and all must be back soon.
 */
describe('200 agents and a gateway restart', () => {
  const dir = tempDir('fleet-storm');
  let fleet: TestFleet;
  let restarted: RelayProcess | undefined;
  const dialers: GatewayDialer[] = [];
  const log = createLogger('silent');
  const streams = new AgentStreams(new VirtualMachineRegistry([], 0, log), log);

  before(async () => {
    fleet = await startFleet(dir.path, 1);
    const gateway = fleet.gateways[0]!;
    const caFingerprint = (await gateway.api('GET', '/v1/relay')).body.sshHostKeys[0].fingerprint as string;
    const [host, port] = fleet.agentAddresses[0]!.split(':') as [string, string];
    for (let index = 0; index < AGENTS; index++) {
      const name = `sim-${index}`;
      const joined = await gateway.api('POST', '/v1/agentJoinTokens', { agent: name });
      assert.equal(joined.status, 201);
      const dialer = new GatewayDialer({
        address: fleet.agentAddresses[0]!,
        target: { host, port: Number(port) },
        name,
        privateKey: generateEd25519().private,
        joinToken: joined.body.token,
        trust: (fingerprint) => fingerprint === caFingerprint,
        streams,
        log,
        hello: () => ({ type: 'hello', name, version: 'sim', virtualMachines: [] }),
        onMessage: () => {},
      });
      dialers.push(dialer);
      dialer.start();
    }
    await waitUntil(() => dialers.every((dialer) => dialer.connected), 60_000, 'every simulated agent to connect');
  });
  after(async () => {
    await Promise.all(dialers.map((dialer) => dialer.stop()));
    await restarted?.stop();
    await fleet?.dispose();
    dir.dispose();
  });

  test('after a gateway restart they come back spread over at least 10 s, all within 30 s', async () => {
    const gateway = fleet.gateways[0]!;
    const listed = (await gateway.api('GET', '/v1/agents')).body.value as Array<{ state: string }>;
    assert.equal(listed.filter((agent) => agent.state === 'Connected').length, AGENTS);
    await gateway.stop('SIGKILL');
    await waitUntil(() => dialers.every((dialer) => !dialer.connected), 20_000, 'every agent to see the gateway gone');
    restarted = await startRelay(gateway.configPath, gateway.dataDir, FLEET_ENV);
    const back = Date.now();
    const returned = new Map<GatewayDialer, number>();
    await waitUntil(
      () => {
        for (const dialer of dialers) if (dialer.connected && !returned.has(dialer)) returned.set(dialer, Date.now() - back);
        return returned.size === AGENTS;
      },
      30_000,
      'every agent back within 30 s',
    );
    const times = [...returned.values()].sort((a, b) => a - b);
    const spread = times.at(-1)! - times[0]!;
    // Per second, how many came back: no second takes most of them.
    const perSecond = new Map<number, number>();
    for (const time of times) perSecond.set(Math.floor(time / 1000), (perSecond.get(Math.floor(time / 1000)) ?? 0) + 1);
    const busiest = Math.max(...perSecond.values());
    process.stdout.write(`# back from ${times[0]} to ${times.at(-1)} ms after the restart (spread ${spread} ms); at most ${busiest} in one second\n`);
    assert.ok(spread >= 10_000, `spread over ${spread} ms`);
    assert.ok(times.at(-1)! <= 30_000);
    assert.ok(busiest <= AGENTS / 5, `${busiest} of ${AGENTS} in one second`);
    await waitUntil(async () => ((await restarted!.api('GET', '/v1/agents')).body.value as Array<{ state: string }>).filter((agent) => agent.state === 'Connected').length === AGENTS, 10_000, 'the restarted gateway to list them all connected');
  });
});
