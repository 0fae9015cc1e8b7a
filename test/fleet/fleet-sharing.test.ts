import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { startFleet, type AgentProcess, type TestFleet } from '../helpers/fleet.js';
import { generateKey, OpenSshSession, type KeyPair } from '../helpers/openssh.js';
import { RELAY_BIN } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * Observers through a fleet: PostgreSQL, two gateways, an agent serving a console stand-in that
 * echoes (what reaches the VM comes back to everyone, so typing that does not come back did not
 * reach it). The controller is on one gateway and the observer on the other; the agent serves
 * the observer's stream beside the controller's, outside the session slot.
 */
describe('a fleet: observers beside the controller, through any gateway', () => {
  const dir = tempDir('fleet-sharing');
  let fleet: TestFleet;
  let agent: AgentProcess;
  const consoles: FakeConsole[] = [];
  let vncEcho: Server | undefined;
  const sessions: OpenSshSession[] = [];
  let key: KeyPair;
  let accessId: string;

  const ssh = (gateway: number, command: string[] = []): OpenSshSession => {
    const session = new OpenSshSession({ port: fleet.gateways[gateway]!.sshPort, user: accessId, key: key.privateKeyPath, command });
    sessions.push(session);
    return session;
  };

  before(async () => {
    fleet = await startFleet(dir.path, 2);
    consoles.push(await startFakeConsole(join(dir.path, 'serial.sock'), 0));
    // The "screen": a plain echo (the console stand-in takes 0x01 as its flood trigger, and RFB bytes have it).
    vncEcho = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => vncEcho!.listen(join(dir.path, 'vnc.sock'), resolve));
    // The agent records its VMs' serial sessions (the stand-in's "screen" is no VNC server: nothing to record there).
    agent = await fleet.addAgent('hv-a', { virtualMachines: [{ name: 'vm-1', serial: join(dir.path, 'serial.sock'), vnc: join(dir.path, 'vnc.sock') }], recording: { serial: 'on', checkpointInterval: '1s' } });
    await fleet.waitForAgent('hv-a');
    await waitUntil(async () => ((await fleet.gateways[1]!.api('GET', '/v1/virtualMachines')).body.value as Array<{ powerState: string }>)[0]?.powerState === 'Running', 20_000, 'vm-1 Running');
    key = generateKey(dir.path, 'owner');
    const put = await fleet.gateways[0]!.api('PUT', '/v1/virtualMachines/vm-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey }, allowObservers: true });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    accessId = put.body.virtualMachineAccessId;
  });
  after(async () => {
    for (const session of sessions) session.close();
    await agent?.stop('SIGKILL');
    await fleet?.dispose();
    for (const console of consoles) console.close();
    vncEcho?.close();
    dir.dispose();
  });

  test('an observer on gateway 2 gets the controller\'s output from gateway 1; its typing never reaches the VM; the controller stays', async () => {
    const owner = ssh(0);
    await owner.echo('owner-1');
    await owner.waitFor(/\[lifeline\] this session is recorded \(recording [0-9a-f]{8}; docs\/recordings\.md\)/, 5000);
    const observer = ssh(1, ['observe']);
    await observer.waitFor('observing vm-1: read-only', 15_000);
    await observer.waitFor('this session is recorded', 5000);
    const from = observer.output.length;
    const typedAt = performance.now();
    await owner.echo('owner-2');
    await observer.waitFor('owner-2', 5000, from);
    console.error(`controller's echo at the observer on the other gateway after ${(performance.now() - typedAt).toFixed(0)} ms`);
    observer.send('HACK-from-the-observer');
    await sleep(1500);
    assert.doesNotMatch(owner.output, /HACK/, 'the echoing console never got the observer\'s typing');
    assert.ok(owner.running);
    await owner.echo('owner-3');
    // Gateway 2 lists its own observer and the fleet's controller (held by gateway 1).
    const listed = (await fleet.gateways[1]!.api('GET', '/v1/sessions')).body.value as Array<{ role?: string; virtualMachine: string }>;
    assert.deepEqual(listed.filter((session) => session.virtualMachine === 'vm-1').map((session) => session.role ?? 'controller').sort(), ['controller', 'observer']);
    observer.close();
    owner.close();
  });

  test('the recording the agent made is listed and played through either gateway, with both participants; its seal is in the fleet\'s audit trail; verify on the agent passes', async () => {
    let recording: any;
    await waitUntil(async () => {
      recording = ((await fleet.gateways[1]!.api('GET', '/v1/recordings?vm=vm-1')).body.value as any[]).find((r) => r.complete);
      return recording !== undefined;
    }, 15_000, 'a sealed recording listed on gateway 2');
    assert.equal(recording.agent, 'hv-a');
    assert.equal(recording.relayId, 'hv-a');
    assert.deepEqual(recording.participants.map((p: { role: string }) => p.role).sort(), ['controller', 'observer']);
    for (const gateway of fleet.gateways) {
      const response = await fetch(`${gateway.apiUrl}/v1/recordings/${recording.id}/serial.cast`, { headers: { authorization: `Bearer ${gateway.token}` } });
      assert.equal(response.status, 200);
      const cast = await response.text();
      assert.equal(JSON.parse(cast.split('\n')[0]!).version, 2);
      assert.match(cast, /owner-2/, 'the controller\'s echoed marker is in the recording');
      assert.doesNotMatch(cast, /HACK/);
      assert.equal((await gateway.api('GET', `/v1/recordings/${recording.id}`)).body.id, recording.id);
    }
    const audit = (await fleet.gateways[0]!.api('GET', '/v1/auditEvents?limit=1000')).body.value as Array<Record<string, any>>;
    const sealed = audit.find((event) => event.type === 'recording.sealed' && event.recording === recording.id);
    assert.equal(sealed?.agent, 'hv-a');
    const manifest = readFileSync(join(dir.path, 'hv-a-data', 'recordings', recording.id, 'manifest.json'));
    assert.equal(sealed?.manifestSha256, createHash('sha256').update(manifest).digest('hex'));
    const verified = spawnSync(process.execPath, [RELAY_BIN, 'recordings', 'verify', '--config', join(dir.path, 'hv-a.json'), '--id', recording.id], { encoding: 'utf8' });
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    // Held and deleted through a gateway: the agent keeps or deletes it, audited in the fleet's trail.
    assert.equal((await fleet.gateways[1]!.api('PUT', `/v1/recordings/${recording.id}/hold`, { hold: true, reason: 'case 9' })).status, 200);
    assert.equal((await fleet.gateways[0]!.api('DELETE', `/v1/recordings/${recording.id}`)).body.error.code, 'RecordingOnHold');
    assert.equal((await fleet.gateways[0]!.api('PUT', `/v1/recordings/${recording.id}/hold`, { hold: false })).status, 200);
    assert.equal((await fleet.gateways[0]!.api('DELETE', `/v1/recordings/${recording.id}`)).status, 204);
    assert.equal((await fleet.gateways[1]!.api('GET', `/v1/recordings/${recording.id}`)).status, 404);
  });

  test('on one gateway: request and approval move control; the new controller\'s typing reaches the VM, the old one\'s (now observing) does not', async () => {
    const owner = ssh(0);
    await owner.echo('first-owner');
    const colleague = ssh(0, ['observe']);
    await colleague.waitFor('observing vm-1: read-only', 15_000);
    colleague.send('\r~~r');
    await owner.waitFor(/asks for control: Enter ~~a hands it over/, 5000);
    owner.send('\r~~a');
    await colleague.waitFor('you have control of vm-1 now (approved)', 5000);
    await owner.waitFor(/has control now \(approved\); you are observing/, 5000);
    await colleague.echo('new-controller');
    const from = colleague.output.length;
    owner.send('OLD-controller-typing');
    await sleep(1500);
    assert.doesNotMatch(colleague.output.slice(from), /OLD-controller/);
    assert.ok(owner.running, 'the old controller observes, it is not disconnected');
    colleague.close();
    owner.close();
  });

  test('a VNC observer token works on a gateway: the viewer\'s key events are dropped, its update requests pass (the screen stand-in echoes what reached it)', async () => {
    const minted = await fleet.gateways[1]!.api('POST', '/v1/virtualMachines/vm-1/vncTokens?mode=observe');
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const ws = new WebSocket(minted.body.url.replace(/^http/, 'ws'), ['binary']);
    const echoed: Buffer[] = [];
    ws.on('message', (data: Buffer) => echoed.push(data));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const keyEvent = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x41]);
    const updateRequest = Buffer.from([3, 1, 0, 0, 0, 0, 0, 10, 0, 10]);
    ws.send(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1]), Buffer.from([1]), keyEvent, updateRequest]));
    const expected = Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1]), Buffer.from([1]), updateRequest]);
    await waitUntil(() => Buffer.concat(echoed).length >= expected.length, 5000, 'the passed bytes echoed');
    await sleep(300);
    assert.deepEqual(Buffer.concat(echoed), expected, 'everything but the key event reached the VM');
    ws.close();
  });
});
