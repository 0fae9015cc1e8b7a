import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startFakeConsole, type FakeConsole } from '../bench/fake-console.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey, OpenSshSession } from '../helpers/openssh.js';
import { ephemeralConfig, type RelayProcess, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';

/** A serial backend without break (a raw socket chardev): OpenSSH's ~B is refused with a line, and the session goes on. */
const tmp = tempDir('serial-break');
let relay: RelayProcess | undefined;
let serial: FakeConsole | undefined;
let session: OpenSshSession | undefined;
after(() => runCleanups([() => session?.close(), () => relay?.stop(), () => serial?.close(), tmp.dispose]));

test('~B on a raw serial socket: "break not sent" with the reason, and the session goes on', async () => {
  serial = await startFakeConsole(join(tmp.path, 'serial.sock'), 0);
  const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', { virtualMachines: [{ name: 'echo', serial: join(tmp.path, 'serial.sock') }, { name: 'ghost', serial: join(tmp.path, 'ghost-serial.sock'), vnc: join(tmp.path, 'ghost-vnc.sock') }] });
  relay = await startRelay(configPath, dataDir);
  const key = generateKey(tmp.path, 'key');
  const put = await relay.api('PUT', '/v1/virtualMachines/echo/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
  assert.equal(put.status, 201);
  session = new OpenSshSession({ port: relay.sshPort, user: put.body.virtualMachineAccessId, key: key.privateKeyPath });
  session.send('ready\r');
  await session.waitFor('ready', 15_000);
  session.send('~B');
  await session.waitFor("[lifeline] break not sent: this VM's serial port has no break (it needs a telnet-mode chardev", 5000);
  session.send('still-here');
  await session.waitFor('still-here', 5000);
  assert.ok(session.running, 'the session goes on');
});

test('no VNC token for a VM whose sockets are not there: 409 VirtualMachineNotRunning says why', async () => {
  const key = generateKey(tmp.path, 'ghost-key');
  assert.equal((await relay!.api('PUT', '/v1/virtualMachines/ghost/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } })).status, 201);
  const minted = await relay!.api('POST', '/v1/virtualMachines/ghost/vncTokens');
  assert.equal(minted.status, 409);
  assert.equal(minted.body.error.code, 'VirtualMachineNotRunning');
  assert.match(minted.body.error.message, /^ghost is Unavailable: there is no screen to show\. Wait until it is Running/);
});

test('a VM without QMP offers no power action and answers 409 PowerActionNotSupported', async () => {
  const vm = await relay!.api('GET', '/v1/virtualMachines/echo');
  assert.deepEqual(vm.body.powerActions, []);
  const reset = await relay!.api('POST', '/v1/virtualMachines/echo/powerActions', { action: 'reset' });
  assert.equal(reset.status, 409);
  assert.equal(reset.body.error.code, 'PowerActionNotSupported');
  assert.match(reset.body.error.message, /echo has no power control: configure its qmp socket/);
  assert.ok(session!.running, 'the console session is untouched');
});
