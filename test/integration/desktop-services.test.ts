import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import keytar from 'keytar';
import { MessageChannel } from 'node:worker_threads';
import type { StreamMessage } from '../../preload/contract.js';
import { startDesktop } from '../../main/services/desktop-app.js';
import { DesktopService } from '../../main/services/desktop-service.js';
import { generateKeyPair } from '../../main/services/ssh-keys.js';
import { bridgeStream } from '../../main/services/stream-bridge.js';
import { OsKeychain } from '../../main/services/keychain.js';
import { SettingsFile } from '../../main/services/settings.js';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { startRelay, testConfig, type RelayProcess } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/** The main-process services on their own, against a real relay, real lab VMs and the real Secret Service. */
describe('desktop main-process services against the real relay and keychain', () => {
  let lab: Lab;
  let relay: RelayProcess;
  let service: DesktopService;
  let relayId: string;
  const tmp = tempDir('services');
  const settingsPath = join(tmp.path, 'settings.json');

  before(async () => {
    lab = startLab(1);
    const dataDir = join(tmp.path, 'data');
    // A short console lifetime, so auto-renewal has to act within the test.
    relay = await startRelay(testConfig(lab.configPath, dataDir, { consoles: { defaultTtl: '8s', maxTtl: '1h' } }), dataDir);
    service = new DesktopService(new OsKeychain(), new SettingsFile(settingsPath));
    const view = await service.addRelay({ name: 'test relay', url: relay.apiUrl, token: relay.token });
    relayId = view.id;
  });

  // Only this test's own entries are removed (a developer's real keychain may hold others).
  after(() => runCleanups([() => service?.close(), async () => {
    for (const c of await keytar.findCredentials('lifeline')) if (relayId && c.account.includes(relayId)) await keytar.deletePassword('lifeline', c.account);
  }, () => relay?.stop(), () => lab?.down(), tmp.dispose]));

  test('adding a relay pins its host key and keeps the token only in the keychain', async () => {
    const info = (await relay.api('GET', '/v1/relay')).body;
    const relays = await service.listRelays();
    assert.equal(relays.length, 1);
    assert.equal(relays[0]!.hostKeyFingerprint, info.sshHostKeys[0].fingerprint);
    assert.equal(relays[0]!.status, 'ok');
    assert.equal(await keytar.getPassword('lifeline', `token:${relayId}`), relay.token);
    assert.doesNotMatch(readFileSync(settingsPath, 'utf8'), new RegExp(relay.token));
    await assert.rejects(service.addRelay({ name: 'x', url: relay.apiUrl, token: 'llt_wrong-token-0123456789abcdef' }), /refused the API token/);
    await assert.rejects(service.addRelay({ name: 'x', url: 'http://127.0.0.1:9', token: 'llt_wrong-token-0123456789abcdef' }), /Cannot reach the relay at http:\/\/127\.0\.0\.1:9/);
    await assert.rejects(service.addRelay({ name: 'x', url: 'not a url', token: 'llt_wrong-token-0123456789abcdef' }), /is not a relay API URL/);
    // Editing: a new token is checked before it replaces the stored one; renaming is kept.
    await assert.rejects(service.updateRelay({ id: relayId, token: 'llt_wrong-token-0123456789abcdef' }), /refused the API token/);
    assert.equal(await keytar.getPassword('lifeline', `token:${relayId}`), relay.token);
    assert.equal((await service.updateRelay({ id: relayId, name: 'renamed', token: relay.token })).name, 'renamed');
    await assert.rejects(service.updateRelay({ id: relayId, endpoint: 'nowhere' }), /has no private endpoint "nowhere"/);
  });

  test('the window\'s refresh (relays and VMs listed together) asks the relay who its token is once', async () => {
    const relayInfoCalls = async (): Promise<number> => {
      const text = await (await fetch(`${relay.apiUrl}/metrics`, { headers: { authorization: `Bearer ${relay.token}` } })).text();
      const line = text.split('\n').find((l) => l.startsWith('lifeline_api_requests_total{route="/v1/relay",method="GET",status="200"} '));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const before = await relayInfoCalls();
    const [relays, vms] = await Promise.all([service.listRelays(), service.listVms()]);
    assert.equal(relays[0]!.status, 'ok');
    assert.deepEqual(vms.map((vm) => vm.name), ['lab-1']);
    assert.equal(await relayInfoCalls() - before, 1);
    // Asked one after the other, each asks (nothing is cached between refreshes).
    await service.listRelays();
    await service.listVms();
    assert.equal(await relayInfoCalls() - before, 3);
  });

  test('auto-renew keeps an open console from expiring (8 s lifetime)', async (t) => {
    const tab = await service.openConsole(relayId, 'lab-1', 'serial');
    // What a transport does with the tab's stream: bridge it to a renderer port that acknowledges what it reads.
    const { port1, port2 } = new MessageChannel();
    port2.on('message', (message: StreamMessage) => message.type === 'data' && port2.postMessage({ type: 'ack', bytes: message.data.byteLength }));
    bridgeStream(service.stream(tab.streamId)!, { send: (m) => port1.postMessage(m), onMessage: (l) => void port1.on('message', l), onClose: (l) => void port1.on('close', l), close: () => port1.close() });
    t.after(() => port2.close());
    const firstExpiration = Date.parse(tab.expiresAt);
    let closedReason: string | undefined;
    service.events.on('event', (event) => {
      if (event.type === 'tabClosed' && event.tabId === tab.id) closedReason = event.reason;
    });
    // Past the original expiration, the console has been renewed and the session is alive.
    await new Promise((resolve) => setTimeout(resolve, firstExpiration - Date.now() + 2000));
    const console = (await relay.api('GET', '/v1/virtualMachines/lab-1/console')).body;
    assert.ok(Date.parse(console.expiration) > firstExpiration, `renewed: ${console.expiration}`);
    assert.equal(console.detailedStatus, 'Ready');
    assert.equal(closedReason, undefined, 'the session was not closed');
    const sessions = (await relay.api('GET', '/v1/sessions')).body.value as Array<{ virtualMachine: string }>;
    assert.equal(sessions.filter((s) => s.virtualMachine === 'lab-1').length, 1);

    // With auto-renew off, the relay closes the session when the console expires, and the tab says why.
    await service.setAutoRenew(false);
    await waitUntil(() => closedReason, 15_000, 'the tab to close at expiry');
    assert.equal(closedReason, 'the console for lab-1 expired');
    await service.setAutoRenew(true);
    await service.closeTab(tab.id);
  });

  test('a changed host key is refused like OpenSSH does, naming both fingerprints', async () => {
    const original = readFileSync(settingsPath, 'utf8');
    const pinned = JSON.parse(original).relays[0].hostKeyFingerprint as string;
    writeFileSync(settingsPath, original.replace(pinned, 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    const tampered = new DesktopService(new OsKeychain(), new SettingsFile(settingsPath));
    try {
      await assert.rejects(tampered.openConsole(relayId, 'lab-1', 'serial'), (error: Error) => {
        assert.match(error.message, /host key has changed: expected SHA256:AAAA\S+, got SHA256:/);
        assert.ok(error.message.includes(pinned));
        return true;
      });
      // Re-adding the relay does not silently accept the new key either.
      await assert.rejects(tampered.addRelay({ name: 'again', url: relay.apiUrl, token: relay.token }), /Lifeline refuses it, as OpenSSH would/);
    } finally {
      await tampered.close();
      writeFileSync(settingsPath, original);
    }
  });

  test('the auto-renew and theme settings are read back as saved', async () => {
    assert.deepEqual(await service.getSettings(), { autoRenew: true, theme: 'system' });
    await service.setAutoRenew(false);
    await service.setTheme('dark');
    assert.deepEqual(await service.getSettings(), { autoRenew: false, theme: 'dark' });
    assert.deepEqual(await new DesktopService(new OsKeychain(), new SettingsFile(settingsPath)).getSettings(), { autoRenew: false, theme: 'dark' });
    await service.setAutoRenew(true);
    await service.setTheme('system');
    assert.deepEqual(await service.getSettings(), { autoRenew: true, theme: 'system' });
  });

  test('a console holding someone else\'s key is not re-keyed without the user naming that key', async () => {
    const tab = await service.openConsole(relayId, 'lab-1', 'serial');
    await service.closeTab(tab.id);
    // Someone else takes the console with their key.
    const theirs = generateKeyPair();
    const taken = (await relay.api('PATCH', '/v1/virtualMachines/lab-1/console', { sshPublicKey: { keyData: theirs.publicKey } })).body;
    await assert.rejects(service.openConsole(relayId, 'lab-1', 'serial'), (error: Error) => {
      assert.equal(error.name, 'KeyConflictError');
      assert.ok(error.message.includes(theirs.fingerprint), error.message);
      return true;
    });
    await assert.rejects(service.openConsole(relayId, 'lab-1', 'serial', { replaceKey: 'SHA256:someOtherKeyThanTheirs' }), /holds another key/);
    assert.equal((await relay.api('GET', '/v1/virtualMachines/lab-1/console')).body.keyFingerprint, taken.keyFingerprint, 'their key is still on the console');
    // Confirmed for exactly their key: replaced by ours.
    const confirmed = await service.openConsole(relayId, 'lab-1', 'serial', { replaceKey: theirs.fingerprint });
    assert.notEqual(confirmed.keyFingerprint, theirs.fingerprint);
    await service.closeTab(confirmed.id);
  });

  test('key rotation stores the new key before the console changes and rolls back when the relay refuses it', async () => {
    const account = `key:${relayId}:lab-1`;
    // The keychain fails: the console keeps the key we still have.
    const failing = new (class extends OsKeychain {
      override async set(): Promise<void> {
        throw new Error('the keychain is locked');
      }
    })();
    const locked = new DesktopService(failing, new SettingsFile(settingsPath));
    const tab = await locked.openConsole(relayId, 'lab-1', 'serial');
    const before = (await relay.api('GET', '/v1/virtualMachines/lab-1/console')).body.keyFingerprint;
    await assert.rejects(locked.reconnectWithNewKey(tab.id), /the keychain is locked/);
    assert.equal((await relay.api('GET', '/v1/virtualMachines/lab-1/console')).body.keyFingerprint, before, 'the console was not re-keyed');
    await locked.close();

    // The relay refuses the new key (the console was deleted meanwhile): the old key goes back into the keychain.
    const open = await service.openConsole(relayId, 'lab-1', 'serial');
    const oldKey = await keytar.getPassword('lifeline', account);
    assert.equal((await relay.api('DELETE', '/v1/virtualMachines/lab-1/console')).status, 204);
    await assert.rejects(service.reconnectWithNewKey(open.id), /console/i);
    assert.equal(await keytar.getPassword('lifeline', account), oldKey, 'the previous key is back');
    await service.closeTab(open.id);
  });

  test('with a limited token the VM views say what it may not do, and a refused call says which scope is missing', async () => {
    const limited = await relay.api('POST', '/v1/tokens', { name: 'desk-viewer', scopes: ['consoles:read'], virtualMachines: ['lab-*'] });
    assert.equal(limited.status, 201);
    const view = await service.updateRelay({ id: relayId, token: limited.body.token });
    assert.deepEqual(view.token, { name: 'desk-viewer', scopes: ['consoles:read'], virtualMachines: ['lab-*'] });
    assert.deepEqual(view.allowed, { endpoints: false });
    const [vm] = await service.listVms();
    assert.deepEqual(vm!.allowed, { consoles: false, power: false });
    await assert.rejects(service.powerAction(relayId, 'lab-1', 'nmi'), /Not allowed with this relay's API token: the token "desk-viewer" lacks the scope "power"/);
    await assert.rejects(service.createEndpoint(relayId, { name: 'ops' }), /lacks the scope "endpoints"/);
    await assert.rejects(service.disableConsole(relayId, 'lab-1'), /lacks the scope "consoles:write"/);
    // Back to the admin token: everything is allowed again.
    assert.deepEqual((await service.updateRelay({ id: relayId, token: relay.token })).allowed, { endpoints: true });
    assert.deepEqual((await service.listVms())[0]!.allowed, { consoles: true, power: true });
  });

  test('deleting a console removes its key from the keychain; removing the relay removes its secrets', async () => {
    const tab = await service.openConsole(relayId, 'lab-1', 'serial');
    await service.closeTab(tab.id);
    assert.ok(await keytar.getPassword('lifeline', `key:${relayId}:lab-1`));
    const view = await service.deleteConsole(relayId, 'lab-1');
    assert.equal(view.console.state, 'none');
    assert.equal(await keytar.getPassword('lifeline', `key:${relayId}:lab-1`), null);
    await service.openConsole(relayId, 'lab-1', 'serial').then((t) => service.closeTab(t.id));
    await service.removeRelay(relayId);
    const left = (await keytar.findCredentials('lifeline')).map((c) => c.account).filter((a) => a.includes(relayId));
    assert.deepEqual(left, []);
  });
});

describe('the app on a relay config of the user\'s (--relay-config)', () => {
  const tmp = tempDir('own-relay');
  after(() => tmp.dispose());

  test('that relay keeps its own admin token: the one in its admin.token still works', async () => {
    const dataDir = join(tmp.path, 'relay-data');
    const configPath = join(tmp.path, 'relay.json');
    writeFileSync(configPath, JSON.stringify({ dataDir: './relay-data', api: { listen: '127.0.0.1:0' }, ssh: { port: 0 }, vnc: { port: 0 }, virtualMachines: [{ name: 'vm1', vnc: join(tmp.path, 'absent.sock') }] }));
    const first = await startRelay(configPath, dataDir);
    await first.stop();
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const desktop = await startDesktop({ dataDir: join(tmp.path, 'app'), relayConfig: configPath, log: () => undefined });
    try {
      await desktop.ready;
      const [view] = await desktop.service.listRelays();
      assert.equal(view?.status, 'ok', JSON.stringify(view));
      const check = await fetch(`${view!.url}/v1/relay`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(check.status, 200, 'the token in admin.token was not replaced');
    } finally {
      await desktop.close();
      for (const c of await keytar.findCredentials('lifeline')) if (c.account.startsWith('token:') && (await keytar.getPassword('lifeline', c.account)) === token) await keytar.deletePassword('lifeline', c.account);
    }
  });
});
