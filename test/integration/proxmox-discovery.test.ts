import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultCacheDir, ensureLabImage, findQemu } from '../../relay/src/lab/lab-image.js';
import { runCleanups } from '../helpers/cleanup.js';
import { generateKey, OpenSshSession, spawnLocalForward, type KeyPair } from '../helpers/openssh.js';
import { rfbHandshake } from '../helpers/rfb.js';
import { ephemeralConfig, type RelayProcess, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Proxmox VE's layout, with real QEMU: VMs started as Proxmox starts them (sockets
 * `<vmid>.serial0`, `.vnc`, `.qmp` and `<vmid>.pid` in a run folder, the name in
 * `<vmid>.conf`), found by `discover: [{ proxmox: … }]` without a restart as they come and go.
 */
describe('Proxmox discovery over real QEMU VMs', () => {
  const tmp = tempDir('pve');
  const runDir = join(tmp.path, 'run');
  const configDir = join(tmp.path, 'conf');
  let relay: RelayProcess;
  let key: KeyPair;
  const sessions: OpenSshSession[] = [];
  const forwards: Array<{ kill: () => void }> = [];
  const image = ensureLabImage(defaultCacheDir(), () => undefined);

  function startPveVm(vmid: number, hostname: string): void {
    const path = (suffix: string): string => join(runDir, `${vmid}.${suffix}`);
    const result = spawnSync(findQemu(), [
      '-name', hostname, '-machine', 'pc', '-accel', 'tcg', '-m', '128', '-nodefaults', '-no-user-config',
      '-kernel', image.kernel, '-initrd', image.initramfs, '-append', `console=tty0 console=ttyS0 quiet lifeline.host=${hostname}`,
      '-chardev', `socket,id=serial0,path=${path('serial0')},server=on,wait=off`, '-serial', 'chardev:serial0',
      '-vga', 'std', '-vnc', `unix:${path('vnc')}`, '-qmp', `unix:${path('qmp')},server=on,wait=off`,
      '-pidfile', path('pid'), '-daemonize',
    ], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
  }

  function stopPveVm(vmid: number): void {
    try {
      process.kill(Number(readFileSync(join(runDir, `${vmid}.pid`), 'utf8').trim()), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  before(async () => {
    mkdirSync(runDir, { recursive: true });
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, '101.conf'), 'boot: order=scsi0\ncores: 1\nmemory: 128\nname: web01\n\n[snap1]\nname: not-this-one\n');
    startPveVm(101, 'web01');
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', { discover: [{ proxmox: { runDir, configDir } }] });
    relay = await startRelay(configPath, dataDir);
    key = generateKey(tmp.path, 'key');
  });

  after(() => runCleanups([...sessions.map((s) => () => s.close()), ...forwards.map((f) => () => f.kill()), () => relay?.stop(), () => stopPveVm(101), () => stopPveVm(102), tmp.dispose]));

  async function openConsole(vm: string, user: string): Promise<OpenSshSession> {
    const session = new OpenSshSession({ port: relay.sshPort, user, key: key.privateKeyPath });
    sessions.push(session);
    session.send('\r');
    await session.waitFor(new RegExp(`${vm}:[^\\n]*# `), 30_000);
    return session;
  }

  let accessId: string;

  test('a running VM is found with its name from <vmid>.conf (not a snapshot\'s), its channels, and QMP power actions', async () => {
    const vm = await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/web01')).body, 10_000, 'web01 listed');
    assert.equal(vm.source, 'proxmox');
    assert.deepEqual(vm.consoleTypes, ['serial', 'vnc']);
    assert.deepEqual(vm.powerActions, ['reset', 'shutdown', 'powerOff', 'nmi']);
    await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/web01')).body.powerState === 'Running', 10_000, 'web01 running (QMP)');
    const put = await relay.api('PUT', '/v1/virtualMachines/web01/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    accessId = put.body.virtualMachineAccessId;
  });

  test('its serial console runs a command; its screen comes through ssh -L; reset reboots it', async () => {
    const session = await openConsole('web01', accessId);
    await session.run('echo pve-$((6*7))', 'pve-42');
    session.close();
    const localPort = 20000 + Math.floor(Math.random() * 20000);
    const forward = spawnLocalForward({ port: relay.sshPort, user: accessId, key: key.privateKeyPath, localPort, destination: 'vnc:5900' });
    forwards.push(forward);
    const init = await waitUntil(async () => {
      const socket = connect(localPort, '127.0.0.1');
      try {
        await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        return await rfbHandshake(socket, 5000);
      } catch {
        return undefined;
      } finally {
        socket.destroy();
      }
    }, 20_000, 'the VM\'s VNC server through ssh -L');
    assert.equal(init.name, 'QEMU (web01)');
    forward.kill();
    const again = await openConsole('web01', accessId);
    const from = again.output.length;
    assert.equal((await relay.api('POST', '/v1/virtualMachines/web01/powerActions', { action: 'reset' })).status, 202);
    await again.waitFor(/BusyBox v1\.\d+/, 60_000, from);
    again.close();
  });

  test('a VM started later appears within 5 s, named vm<vmid> without a config; a stopped one ends its session with a reason and shows Stopped; back, the same access id works', async () => {
    startPveVm(102, 'vm102');
    const started = Date.now();
    await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/vm102')).status === 200, 5000, 'vm102 discovered');
    assert.ok(Date.now() - started <= 5000);

    const session = await openConsole('web01', accessId);
    const stopped = Date.now();
    stopPveVm(101);
    await session.waitFor('[lifeline] session closed: the VM web01 stopped or was removed (proxmox)', 5000);
    await session.exited;
    await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/web01')).body.powerState === 'Stopped', 5000, 'web01 listed as Stopped');
    assert.deepEqual((await relay.api('GET', '/v1/virtualMachines/web01')).body.powerActions, [], 'a VM that is gone offers no power action');
    assert.ok(Date.now() - stopped <= 5000, 'within 5 s');
    assert.equal((await relay.api('GET', '/v1/virtualMachines/web01/console')).body.virtualMachineAccessId, accessId, 'its console is kept');

    startPveVm(101, 'web01');
    await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/web01')).body.powerState === 'Running', 10_000, 'web01 back');
    const back = await openConsole('web01', accessId);
    await back.run('echo back-$((40+2))', 'back-42');
    back.close();
  });

  test('a name both in virtualMachines and found by discovery stops the relay at start, naming both', async () => {
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'clash', {
      virtualMachines: [{ name: 'web01', serial: join(tmp.path, 'nowhere.sock') }],
      discover: [{ proxmox: { runDir, configDir } }],
    });
    await assert.rejects(startRelay(configPath, dataDir), /the VM name "web01" is both in virtualMachines and in proxmox .*; rename one of them/);
  });
});
