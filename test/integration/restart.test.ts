import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, createWebSocketStream } from 'ws';
import { startLab, type Lab } from '../helpers/lab.js';
import { rfbHandshake } from '../helpers/rfb.js';
import { generateKey, OpenSshSession, type KeyPair } from '../helpers/openssh.js';
import { RELAY_BIN, startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

describe('relay restarts, VM restarts and graceful shutdown', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let key: KeyPair;
  const tmp = tempDir('restart');
  const dataDir = join(tmp.path, 'data');
  let configPath: string;
  const sessions: OpenSshSession[] = [];

  before(async () => {
    lab = startLab(2);
    configPath = testConfig(lab.configPath, dataDir);
    relay = await startRelay(configPath, dataDir);
    key = generateKey(tmp.path, 'key');
  });

  after(async () => {
    for (const session of sessions) session.close();
    await relay?.stop();
    lab?.down();
    tmp.dispose();
  });

  function open(accessId: string, port: number): OpenSshSession {
    const session = new OpenSshSession({ port, user: accessId, key: key.privateKeyPath });
    sessions.push(session);
    return session;
  }

  test('consoles, endpoints and the host key survive a restart; output made while detached is replayed', async () => {
    const created = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    assert.equal(created.status, 201);
    const accessId = created.body.virtualMachineAccessId as string;
    const endpoint = await relay.api('PUT', '/v1/privateEndpoints/persisted', { ipAddress: '127.0.0.61', allowedSourcePrefixes: ['127.0.0.0/8'] });
    assert.equal(endpoint.status, 201);
    const before = (await relay.api('GET', '/v1/relay')).body;

    const session = open(accessId, relay.sshPort);
    session.send('\r');
    await session.waitFor(/lab-1:[^\n]*# /, 30_000);
    // Printed by the guest ~4 s from now, while no client (and, for a while, no relay) is attached.
    await session.run('(sleep 4; echo detached-$((40+2))) &', /# /);
    session.close();

    const code = await relay.stop('SIGTERM');
    assert.equal(code, 0, relay.output());
    relay = await startRelay(configPath, dataDir);
    await sleep(5000);

    const after = (await relay.api('GET', '/v1/relay')).body;
    assert.equal(after.id, before.id);
    assert.deepEqual(after.sshHostKeys, before.sshHostKeys);
    const restored = (await relay.api('GET', '/v1/privateEndpoints/persisted')).body;
    assert.equal(restored.ipAddress, '127.0.0.61');
    assert.deepEqual(restored.allowedSourcePrefixes, ['127.0.0.0/8']);
    assert.equal(restored.provisioningState, 'Succeeded');
    const consoleAfter = (await relay.api('GET', '/v1/virtualMachines/lab-1/console')).body;
    assert.equal(consoleAfter.virtualMachineAccessId, accessId);
    assert.equal(consoleAfter.detailedStatus, 'Ready');

    // Through the restored private endpoint, checking the pinned host key as the desktop does.
    const knownHosts = join(tmp.path, 'known_hosts');
    const hostKey = readFileSync(join(dataDir, 'ssh_host_ed25519_key.pub'), 'utf8').trim();
    writeFileSync(knownHosts, `[127.0.0.61]:${restored.sshPort} ${hostKey}\n`);
    const again = new OpenSshSession({
      port: restored.sshPort,
      host: '127.0.0.61',
      user: accessId,
      key: key.privateKeyPath,
      extra: ['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`],
    });
    sessions.push(again);
    await again.waitFor('detached-42', 10_000);
    await again.run('echo back-$((5*5))', 'back-25');
    again.close();
  });

  /** A noVNC-style WebSocket to the VM's screen through a fresh token, past the RFB handshake. */
  async function openScreen(vm: string): Promise<{ ws: WebSocket; name: string; closed: Promise<{ code: number; reason: string; at: number }> }> {
    const minted = await relay.api('POST', `/v1/virtualMachines/${vm}/vncTokens`);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const ws = new WebSocket(minted.body.url.replace(/^http/, 'ws'), ['binary']);
    const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const init = await rfbHandshake(createWebSocketStream(ws));
    return { ws, name: init.name, closed };
  }

  test('kill -9 of QEMU under live serial and VNC sessions: each client is told why, the VM re-attaches when it is back', async () => {
    const created = await relay.api('PUT', '/v1/virtualMachines/lab-2/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    const accessId = created.body.virtualMachineAccessId as string;
    const session = open(accessId, relay.sshPort);
    session.send('\r');
    await session.waitFor(/lab-2:[^\n]*# /, 30_000);
    const screen = await openScreen('lab-2');
    assert.match(screen.name, /lab-2/);
    const auditFrom = (await relay.api('GET', '/v1/auditEvents?vm=lab-2&limit=1000')).body.value.length as number;

    const pid = Number(readFileSync(join(lab.vmDir('lab-2'), 'qemu.pid'), 'utf8'));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    // The VNC client is closed with the relay's code and a reason; the SSH session stays open and says why it is quiet.
    const closed = await screen.closed;
    assert.equal(closed.code, 4000);
    assert.match(closed.reason, /VNC connection ended/);
    assert.ok(closed.at - killedAt < 2000, `the VNC client heard within 2 s (${closed.at - killedAt} ms)`);
    await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/lab-2')).body.powerState === 'Unavailable', 10_000, 'lab-2 Unavailable');
    await session.waitFor('[lifeline] serial console disconnected; waiting for the VM to come back', 5000);
    assert.ok(session.running, 'the session stays open while the VM restarts');
    const refused = await relay.api('POST', '/v1/virtualMachines/lab-2/vncTokens');
    assert.ok(refused.status === 201 || refused.status === 409, `a token for a stopped VM: ${refused.status}`);
    const events = (await relay.api('GET', '/v1/auditEvents?vm=lab-2&limit=1000')).body.value.slice(auditFrom) as Array<Record<string, unknown>>;
    assert.ok(events.some((e) => e.type === 'session.closed' && e.kind === 'vnc' && e.reason === 'vm-disconnected'), `the trail records the VNC session closed by vm-disconnected: ${JSON.stringify(events)}`);

    execFileSync(process.execPath, [RELAY_BIN, 'lab', 'up', '--vms', '2', '--dir', lab.dir], { stdio: 'ignore' });
    await waitUntil(async () => (await relay.api('GET', '/v1/virtualMachines/lab-2')).body.powerState === 'Running', 15_000, 'lab-2 Running');
    const from = session.output.length;
    await waitUntil(async () => {
      session.send('\r');
      await sleep(500);
      return /lab-2:[^\n]*# /.test(session.output.slice(from));
    }, 30_000, 'the restarted VM prompt on the same session');
    await session.run('echo reborn-$((7*6))', 'reborn-42');
    session.close();
    // The new QEMU's screen, through a new token.
    const again = await openScreen('lab-2');
    assert.match(again.name, /lab-2/);
    again.ws.close();
    await again.closed;
  });

  test('SIGTERM gives live sessions a reason line and the relay exits 0', async () => {
    const created = await relay.api('PUT', '/v1/virtualMachines/lab-1/console', { enabled: true, sshPublicKey: { keyData: key.publicKey } });
    const session = open(created.body.virtualMachineAccessId as string, relay.sshPort);
    session.send('\r');
    await session.waitFor(/lab-1:[^\n]*# /, 30_000);
    assert.equal(await relay.stop('SIGTERM'), 0);
    await session.waitFor('[lifeline] session closed: the relay is shutting down', 5000);
    await session.exited;
    assert.match(relay.output(), /"relay stopped"/);
  });
});
