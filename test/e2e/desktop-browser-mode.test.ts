import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import keytar from 'keytar';
import type { Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { testConfig } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The desktop app end to end, in Debian's Chromium through browser mode: real lab VMs, the
 * real relay (embedded, on a given config), and the real Secret Service (the test runner runs
 * inside a private D-Bus session with gnome-keyring).
 */
describe('desktop app in browser mode: launcher, serial and VNC tabs, key rotation, renewal', () => {
  let lab: Lab;
  let web: BrowserMode;
  let page: Page;
  let closeBrowser: (() => Promise<void>) | undefined;
  let relayUrl: string;
  let relayId: string;
  const tmp = tempDir('desktop');

  before(async () => {
    lab = startLab(2);
    const config = testConfig(lab.configPath, join(tmp.path, 'relay-data'), { consoles: { defaultTtl: '2h', maxTtl: '1d' } });
    web = await startBrowserMode(['--relay-config', config, '--data-dir', join(tmp.path, 'app')]);
    const chromium = await launchChromium();
    closeBrowser = chromium.close;
    page = await chromium.browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on('console', (message) => console.error(`browser: ${message.text()}`));
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    await page.goto(web.url);
  });

  after(() => runCleanups([() => closeBrowser?.(), () => web?.stop(), () => lab?.down(), tmp.dispose]));

  const vmRow = (vm: string) => page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: vm, exact: true });

  async function relayApi(method: string, path: string, body?: unknown): Promise<any> {
    const token = await keytar.getPassword('lifeline', `token:${relayId}`);
    const response = await fetch(`${relayUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    return response.status === 204 ? undefined : response.json();
  }

  test('the VM list shows the lab VMs of the embedded relay', async () => {
    await vmRow('lab-1').waitFor({ timeout: 60_000 });
    await vmRow('lab-2').waitFor();
    relayUrl = /Embedded relay running at (\S+)/.exec((await page.getByRole('status').first().textContent()) ?? '')?.[1] ?? '';
    assert.match(relayUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    const accounts = (await keytar.findCredentials('lifeline')).map((c) => c.account);
    relayId = accounts.find((a) => a.startsWith('token:'))!.slice('token:'.length);
    assert.ok(relayId, `the relay token is in the keychain (${accounts.join(', ')})`);
    assert.match((await vmRow('lab-1').textContent()) ?? '', /no console/);
  });

  test('"Open serial console" opens a tab whose terminal shows the guest and runs uname -a', async () => {
    await vmRow('lab-1').getByRole('button', { name: 'Open serial console' }).click();
    const tab = page.getByRole('tab', { name: 'lab-1 — serial' });
    await tab.waitFor({ timeout: 30_000 });
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — serial' });
    const rows = panel.locator('.xterm-rows');
    await panel.locator('.xterm').click();
    await page.keyboard.press('Enter');
    await waitUntil(async () => /lab-1:\S*#/.test((await rows.textContent()) ?? ''), 30_000, 'the guest prompt in the terminal');
    await page.keyboard.type('uname -a');
    await page.keyboard.press('Enter');
    await waitUntil(async () => /Linux lab-1/.test((await rows.textContent()) ?? ''), 20_000, 'uname output in the terminal');
    // The key is in the keychain, never on disk or in the page.
    const secret = await keytar.getPassword('lifeline', `key:${relayId}:lab-1`);
    assert.match(secret ?? '', /BEGIN OPENSSH PRIVATE KEY/);
    assert.doesNotMatch(await page.content(), /PRIVATE KEY/);
    assert.match((await vmRow('lab-1').textContent()) ?? '', /console enabled, expires in/);
  });

  test('"Open VNC console" shows a connected canvas', async () => {
    await vmRow('lab-1').getByRole('button', { name: 'Open VNC console' }).click();
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — VNC' });
    await panel.locator('.vnc-tab[data-state="connected"]').waitFor({ timeout: 30_000 });
    await panel.locator('canvas').waitFor();
    assert.match((await panel.getByRole('status').textContent()) ?? '', /Connected to QEMU \(lab-1\)/);
  });

  test('"Reconnect with new key" changes the keychain secret, closes the old SSH session and the tab works again', async () => {
    await page.getByRole('tab', { name: 'lab-1 — serial' }).click();
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — serial' });
    const before = await keytar.getPassword('lifeline', `key:${relayId}:lab-1`);
    const sessionsBefore = ((await relayApi('GET', '/v1/sessions')).value as Array<{ id: string; kind: string; virtualMachine: string }>).filter((s) => s.virtualMachine === 'lab-1' && s.kind === 'serial');
    assert.equal(sessionsBefore.length, 1);
    await panel.getByRole('button', { name: 'Reconnect with new key' }).click();
    await waitUntil(async () => (await keytar.getPassword('lifeline', `key:${relayId}:lab-1`)) !== before, 20_000, 'a new key in the keychain');
    const after = await keytar.getPassword('lifeline', `key:${relayId}:lab-1`);
    assert.match(after ?? '', /BEGIN OPENSSH PRIVATE KEY/);
    const sessionsAfter = await waitUntil(async () => {
      const list = ((await relayApi('GET', '/v1/sessions')).value as Array<{ id: string; kind: string; virtualMachine: string }>).filter((s) => s.virtualMachine === 'lab-1' && s.kind === 'serial');
      return list.length === 1 && list[0]!.id !== sessionsBefore[0]!.id ? list : undefined;
    }, 20_000, 'the old serial session replaced by a new one');
    assert.equal(sessionsAfter.length, 1);
    const rows = panel.locator('.xterm-rows');
    await panel.locator('.xterm').click();
    await page.keyboard.type('echo rotated-$((20+22))');
    await page.keyboard.press('Enter');
    await waitUntil(async () => /rotated-42/.test((await rows.textContent()) ?? ''), 20_000, 'output after the rotation');
    const consoleAfter = await relayApi('GET', '/v1/virtualMachines/lab-1/console');
    assert.match((await panel.locator('.tab-key').textContent()) ?? '', new RegExp(consoleAfter.keyFingerprint.replace(/[+/]/g, '\\$&')));
  });

  test('"Renew console" moves the expiration', async () => {
    const before = (await relayApi('GET', '/v1/virtualMachines/lab-1/console')).expiration as string;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await vmRow('lab-1').getByRole('button', { name: 'Renew console' }).click();
    const after = await waitUntil(async () => {
      const expiration = (await relayApi('GET', '/v1/virtualMachines/lab-1/console')).expiration as string;
      return expiration !== before ? expiration : undefined;
    }, 10_000, 'a later expiration');
    assert.ok(Date.parse(after) > Date.parse(before));
    await waitUntil(async () => (await vmRow('lab-1').locator('.expires').getAttribute('data-expires')) === after, 10_000, 'the list to show the new expiration');
  });

  test('"Open serial console" on a console holding someone else\'s key asks first, naming the key', async () => {
    // Someone else puts their key on lab-2's console.
    const keyData = execFileSync('sh', ['-c', `ssh-keygen -q -t ed25519 -N '' -f ${join(tmp.path, 'theirs')} && cat ${join(tmp.path, 'theirs')}.pub`], { encoding: 'utf8' }).trim();
    const put = await relayApi('PUT', '/v1/virtualMachines/lab-2/console', { enabled: true, sshPublicKey: { keyData } });
    await waitUntil(async () => ((await vmRow('lab-2').textContent()) ?? '').includes(put.keyFingerprint), 15_000, 'the list to show their key');
    await vmRow('lab-2').getByRole('button', { name: 'Open serial console' }).click();
    const dialog = page.getByRole('dialog', { name: 'Replace console key?' });
    await dialog.waitFor();
    assert.ok(((await dialog.textContent()) ?? '').includes(put.keyFingerprint), 'the dialog names the key it replaces');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await relayApi('GET', '/v1/virtualMachines/lab-2/console')).keyFingerprint, put.keyFingerprint, 'cancel changes nothing');
    assert.equal(await page.getByRole('tab', { name: 'lab-2 — serial' }).count(), 0);
    await vmRow('lab-2').getByRole('button', { name: 'Open serial console' }).click();
    await dialog.getByRole('button', { name: 'Replace key and open' }).click();
    await page.getByRole('tab', { name: 'lab-2 — serial' }).waitFor({ timeout: 30_000 });
    assert.notEqual((await relayApi('GET', '/v1/virtualMachines/lab-2/console')).keyFingerprint, put.keyFingerprint);
  });

  test('after a reload the auto-renew checkbox shows the saved setting and the old page\'s sessions are closed', async () => {
    const box = page.getByRole('checkbox', { name: 'Auto-renew open consoles' });
    assert.equal(await box.isChecked(), true);
    await box.uncheck();
    assert.ok(((await relayApi('GET', '/v1/sessions')).value as unknown[]).length > 0, 'tabs are open before the reload');
    await page.reload();
    // The reloaded page has no tabs: main closed the old page's sessions instead of renewing them for nobody.
    await waitUntil(async () => ((await relayApi('GET', '/v1/sessions')).value as unknown[]).length === 0, 10_000, 'the old page\'s sessions to close');
    await page.getByRole('checkbox', { name: 'Auto-renew open consoles' }).waitFor();
    await waitUntil(async () => (await vmRow('lab-1').count()) > 0, 30_000, 'the app after the reload');
    assert.equal(await page.getByRole('checkbox', { name: 'Auto-renew open consoles' }).isChecked(), false);
    await page.getByRole('checkbox', { name: 'Auto-renew open consoles' }).check();
  });

  test('a wrong relay token gets a clear message', async () => {
    await page.getByRole('textbox', { name: 'Relay name' }).fill('wrong');
    await page.getByRole('textbox', { name: 'Relay URL' }).fill(relayUrl);
    await page.getByLabel('Relay API token').fill('llt_this-token-is-not-valid-0123456789');
    await page.getByRole('button', { name: 'Add relay' }).click();
    await waitUntil(async () => /refused the API token/.test((await page.locator('.notice').textContent()) ?? ''), 10_000, 'the refusal message');
    await page.getByRole('textbox', { name: 'Relay URL' }).fill('http://127.0.0.1:9');
    await page.getByLabel('Relay API token').fill('llt_this-token-is-not-valid-0123456789');
    await page.getByRole('button', { name: 'Add relay' }).click();
    await waitUntil(async () => /Cannot reach the relay at http:\/\/127\.0\.0\.1:9/.test((await page.locator('.notice').textContent()) ?? ''), 10_000, 'the unreachable message');
  });
});
