import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import keytar from 'keytar';
import { DesktopService } from '../../main/services/desktop-service.js';
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

  after(() => runCleanups([() => service?.close(), async () => {
    for (const c of await keytar.findCredentials('lifeline')) await keytar.deletePassword('lifeline', c.account);
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

  test('auto-renew keeps an open console from expiring (8 s lifetime)', async () => {
    const tab = await service.openConsole(relayId, 'lab-1', 'serial');
    // What a transport does with the tab's stream: read it.
    service.stream(tab.streamId)!.resume();
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
