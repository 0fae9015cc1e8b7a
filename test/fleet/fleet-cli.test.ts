import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import keytar from 'keytar';
import { FLEET_ADMIN_TOKEN, startFleet, type TestFleet } from '../helpers/fleet.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { runCli, spawnCli, type CliProcess } from '../helpers/lifeline-cli.js';
import { testConfig } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/* The lifeline CLI against a fleet gateway works as against a standalone relay: a real QEMU VM on a hypervisor agent. */
describe('lifeline CLI against a fleet gateway', () => {
  const dir = tempDir('fleet-cli');
  const home = join(dir.path, 'home');
  const runtime = join(dir.path, 'run');
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_DATA_HOME: join(home, '.local', 'share'), XDG_RUNTIME_DIR: runtime, LIFELINE_RELAY: '', LIFELINE_TOKEN: '' };
  delete env.LIFELINE_DATA_DIR;
  let lab: Lab;
  let fleet: TestFleet;
  let relayId = '';
  const running: CliProcess[] = [];
  const lifeline = (args: string[], input = '') => runCli(args, env, input);

  before(async () => {
    mkdirSync(runtime, { recursive: true, mode: 0o700 });
    chmodSync(runtime, 0o700);
    lab = startLab(1);
    fleet = await startFleet(dir.path);
    const { virtualMachines } = JSON.parse(readFileSync(testConfig(lab.configPath, join(dir.path, 'unused-data')), 'utf8'));
    await fleet.addAgent('hv-cli', { virtualMachines });
    await fleet.waitForAgent('hv-cli');
    writeFileSync(join(dir.path, 'token'), FLEET_ADMIN_TOKEN, { mode: 0o600 });
  });
  after(async () => {
    for (const run of running) await run.stop('SIGKILL');
    if (relayId) for (const credential of await keytar.findCredentials('lifeline')) if (credential.account.includes(relayId)) await keytar.deletePassword('lifeline', credential.account);
    await fleet?.dispose();
    lab?.down();
    dir.dispose();
  });

  test('relay add, agents list, vm list with the agent, console create --generate and connect through gateway 2; sessions list names the gateway', async () => {
    const added = await lifeline(['relay', 'add', 'fleet', '--url', fleet.gateways[1]!.apiUrl, '--token-file', join(dir.path, 'token'), '-o', 'json']);
    assert.equal(added.code, 0, added.stderr);
    relayId = JSON.parse(added.stdout).id;
    const agents = await lifeline(['agents', 'list', '-o', 'json']);
    assert.equal(agents.code, 0, agents.stderr);
    const agent = JSON.parse(agents.stdout).find((a: { name: string }) => a.name === 'hv-cli');
    assert.equal(agent.state, 'Connected');
    assert.deepEqual(agent.virtualMachines, ['lab-1']);
    const table = await lifeline(['vm', 'list']);
    assert.match(table.stdout, /^lab-1\s+Running\s+serial,vnc\s+none\s+hv-cli$/m);
    const created = await lifeline(['console', 'create', 'lab-1', '--generate', '-o', 'json']);
    assert.equal(created.code, 0, created.stderr);

    const live = spawnCli(['connect', 'lab-1', '--no-tty', '--replay', '0'], env);
    running.push(live);
    const sessions = await waitUntil(async () => {
      const listed = JSON.parse((await lifeline(['sessions', 'list', '-o', 'json'])).stdout) as Array<{ virtualMachine: string; gateway?: string }>;
      return listed.length === 1 ? listed : undefined;
    }, 20_000, 'the session in the fleet-wide list');
    assert.equal(sessions[0]!.virtualMachine, 'lab-1');
    assert.ok(sessions[0]!.gateway, JSON.stringify(sessions));
    // The second connect (through the same gateway) displaces it across the fleet's slot: exit 10.
    const second = await lifeline(['connect', 'lab-1', '--no-tty', '--expect', 'lab-1:/#', '--timeout', '30'], '\n');
    assert.equal(second.code, 0, second.stderr);
    assert.equal(await live.exited, 10, live.stderr());
    assert.match(live.stderr(), /\(displaced\)/);
  });
});
