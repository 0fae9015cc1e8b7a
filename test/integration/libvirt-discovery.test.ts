import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultCacheDir, ensureLabImage } from '../../relay/src/lab/lab-image.js';
import { runCleanups } from '../helpers/cleanup.js';
import { domainXml, LIBVIRT_URI, startLibvirt, virsh } from '../helpers/libvirt.js';
import { generateKey, OpenSshSession, spawnLocalForward, type KeyPair } from '../helpers/openssh.js';
import { ephemeralConfig, type RelayProcess, startRelay } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { freeVncPort, gvnccapture, pngSize } from '../helpers/vnc-client.js';
import { waitUntil } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';

/**
 * A real libvirtd with QEMU TCG domains: one with a pty serial (transient, `virsh create`), one
 * with a telnet TCP serial (defined, so it can be powered on again), both with VNC on a TCP
 * port; found by `discover: [{ libvirt: … }]` as they come and go, without a relay restart.
 */
describe('libvirt discovery over a real libvirtd', () => {
  const tmp = tempDir('libvirt');
  const tag = randomBytes(3).toString('hex');
  const ptyVm = `ll${tag}-pty`;
  const telnetVm = `ll${tag}-tel`;
  const laterVm = `ll${tag}-new`;
  const image = ensureLabImage(defaultCacheDir(), () => undefined);
  let libvirt: { stop: () => Promise<void> };
  let relay: RelayProcess;
  let key: KeyPair;
  let ptyXml: string;
  const sessions: OpenSshSession[] = [];
  const access = new Map<string, string>();

  before(async () => {
    libvirt = await startLibvirt();
    ptyXml = join(tmp.path, 'pty.xml');
    writeFileSync(ptyXml, domainXml(ptyVm, image, "<serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>"));
    const telnetXml = join(tmp.path, 'telnet.xml');
    writeFileSync(telnetXml, domainXml(telnetVm, image, `<serial type='tcp'><source mode='bind' host='127.0.0.1' service='${await freePort()}'/><protocol type='telnet'/><target port='0'/></serial>`));
    virsh('create', ptyXml);
    virsh('define', telnetXml);
    virsh('start', telnetVm);
    const { configPath, dataDir } = ephemeralConfig(tmp.path, 'relay', { discover: [{ libvirt: { uri: LIBVIRT_URI } }] });
    relay = await startRelay(configPath, dataDir);
    key = generateKey(tmp.path, 'key');
  });

  after(() =>
    runCleanups([
      ...sessions.map((s) => () => s.close()),
      () => relay?.stop(),
      ...[ptyVm, telnetVm, laterVm].map((vm) => () => {
        try {
          virsh('destroy', vm);
        } catch {
          // not running
        }
      }),
      () => {
        try {
          virsh('undefine', telnetVm);
        } catch {
          // not defined
        }
      },
      () => libvirt?.stop(),
      tmp.dispose,
    ]),
  );

  async function openConsole(vm: string): Promise<OpenSshSession> {
    let accessId = access.get(vm);
    if (!accessId) {
      const put = await relay.api('PUT', `/v1/virtualMachines/${vm}/console`, { enabled: true, sshPublicKey: { keyData: key.publicKey } });
      assert.ok(put.status === 201 || put.status === 200, JSON.stringify(put.body));
      accessId = put.body.virtualMachineAccessId as string;
      access.set(vm, accessId);
    }
    const session = new OpenSshSession({ port: relay.sshPort, user: accessId, key: key.privateKeyPath });
    sessions.push(session);
    session.send('\r');
    await session.waitFor(new RegExp(`${vm}:[^\\n]*# `), 45_000);
    return session;
  }

  test('both domains are found with their state, channels and libvirt power actions', async () => {
    for (const vm of [ptyVm, telnetVm]) {
      const found = await waitUntil(async () => {
        const response = await relay.api('GET', `/v1/virtualMachines/${vm}`);
        return response.status === 200 && response.body.powerState === 'Running' ? response.body : undefined;
      }, 15_000, `${vm} discovered`);
      assert.equal(found.source, 'libvirt');
      assert.deepEqual(found.consoleTypes, ['serial', 'vnc']);
      assert.deepEqual(found.powerActions, ['reset', 'shutdown', 'powerOff', 'nmi']);
    }
    assert.equal((await relay.api('GET', `/v1/virtualMachines/${telnetVm}`)).body.serialBreak, true, 'a telnet serial takes a break');
    assert.equal((await relay.api('GET', `/v1/virtualMachines/${ptyVm}`)).body.serialBreak, false);
  });

  test('OpenSSH runs a command on the pty serial and on the telnet serial (where ~B h is SysRq help)', async () => {
    const pty = await openConsole(ptyVm);
    await pty.run('echo pty-$((6*7))', 'pty-42');
    pty.close();
    const telnet = await openConsole(telnetVm);
    await telnet.run('echo tel-$((6*7))', 'tel-42');
    const from = telnet.output.length;
    telnet.send('\r~B');
    await new Promise((resolve) => setTimeout(resolve, 300));
    telnet.send('h');
    await telnet.waitFor(/sysrq: HELP/, 15_000, from);
    telnet.close();
  });

  test('gvnccapture takes a screenshot of the pty domain through ssh -L …:vnc:5900', async () => {
    const localPort = await freeVncPort();
    const forward = spawnLocalForward({ port: relay.sshPort, user: access.get(ptyVm)!, key: key.privateKeyPath, localPort, destination: 'vnc:5900' });
    try {
      const file = join(tmp.path, 'screen.png');
      const result = await waitUntil(async () => {
        const attempt = await gvnccapture(localPort, file);
        return attempt.status === 0 ? attempt : undefined;
      }, 30_000, 'a screenshot through the forward');
      assert.equal(result.status, 0, result.output);
      const size = pngSize(file);
      assert.ok(size.width >= 640 && size.height >= 400, JSON.stringify(size));
    } finally {
      forward.kill();
    }
  });

  test('virsh destroy ends the session with a reason and shows Stopped within 5 s; created again, the same access id works', async () => {
    const session = await openConsole(ptyVm);
    const destroyed = Date.now();
    virsh('destroy', ptyVm);
    await session.waitFor(`[lifeline] session closed: the VM ${ptyVm} stopped or was removed (libvirt)`, 5000);
    await session.exited;
    await waitUntil(async () => (await relay.api('GET', `/v1/virtualMachines/${ptyVm}`)).body.powerState === 'Stopped', 5000, 'Stopped');
    assert.ok(Date.now() - destroyed <= 5500, 'within 5 s');
    virsh('create', ptyXml);
    await waitUntil(async () => (await relay.api('GET', `/v1/virtualMachines/${ptyVm}`)).body.powerState === 'Running', 10_000, 'running again');
    const back = await openConsole(ptyVm);
    await back.run('echo back-$((40+2))', 'back-42');
    back.close();
  });

  test('a new domain appears without a relay restart, within 5 s', async () => {
    const xml = join(tmp.path, 'later.xml');
    writeFileSync(xml, domainXml(laterVm, image, "<serial type='pty'><target port='0'/></serial>"));
    virsh('create', xml);
    const created = Date.now();
    await waitUntil(async () => (await relay.api('GET', `/v1/virtualMachines/${laterVm}`)).status === 200, 5000, `${laterVm} discovered`);
    assert.ok(Date.now() - created <= 5000);
  });

  test('powerOff then powerOn on a defined domain; nmi reaches the guest; a stopped domain offers only powerOn', async () => {
    const session = await openConsole(telnetVm);
    const from = session.output.length;
    assert.equal((await relay.api('POST', `/v1/virtualMachines/${telnetVm}/powerActions`, { action: 'nmi' })).status, 202);
    await session.waitFor(/NMI received/, 15_000, from);
    assert.equal((await relay.api('POST', `/v1/virtualMachines/${telnetVm}/powerActions`, { action: 'powerOff' })).status, 202);
    await session.waitFor(`[lifeline] session closed: the VM ${telnetVm} stopped or was removed (libvirt)`, 5000);
    const stopped = await waitUntil(async () => {
      const vm = (await relay.api('GET', `/v1/virtualMachines/${telnetVm}`)).body;
      return vm.powerState === 'Stopped' ? vm : undefined;
    }, 5000, 'Stopped');
    assert.deepEqual(stopped.powerActions, ['powerOn']);
    const reset = await relay.api('POST', `/v1/virtualMachines/${telnetVm}/powerActions`, { action: 'reset' });
    assert.equal(reset.status, 409);
    assert.equal(reset.body.error.code, 'PowerActionNotSupported');
    assert.equal((await relay.api('POST', `/v1/virtualMachines/${telnetVm}/powerActions`, { action: 'powerOn' })).status, 202);
    await waitUntil(async () => (await relay.api('GET', `/v1/virtualMachines/${telnetVm}`)).body.powerState === 'Running', 10_000, 'running again');
    const back = await openConsole(telnetVm);
    await back.run('echo on-$((40+2))', 'on-42');
    back.close();
  });
});
