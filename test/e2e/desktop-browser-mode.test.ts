import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import keytar from 'keytar';
import type { Page } from 'playwright-core';
import { runInSerialTab } from '../helpers/app-page.js';
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
    await runInSerialTab(page, 'lab-1', 'uname -a', /Linux lab-1/);
    // The key is in the keychain, never on disk or in the page.
    const secret = await keytar.getPassword('lifeline', `key:${relayId}:lab-1`);
    assert.match(secret ?? '', /BEGIN OPENSSH PRIVATE KEY/);
    assert.doesNotMatch(await page.content(), /PRIVATE KEY/);
    assert.match((await vmRow('lab-1').textContent()) ?? '', /console on · 1 h 59 min left/);
  });

  test('reopening the serial tab replays the output, and xterm.js types nothing into the VM (the old ESC[6n is not replayed)', async () => {
    const serialOf = async (): Promise<{ id: string; bytesIn: number } | undefined> =>
      ((await relayApi('GET', '/v1/sessions')).value as Array<{ id: string; kind: string; virtualMachine: string; bytesIn: number }>).find((s) => s.virtualMachine === 'lab-1' && s.kind === 'serial');
    const first = await serialOf();
    assert.ok(first, 'the serial tab has a session');
    await page.getByRole('tablist', { name: 'Consoles' }).getByRole('button', { name: 'Close lab-1 — serial' }).click();
    await waitUntil(async () => (await serialOf()) === undefined, 10_000, 'the serial session to end');
    await vmRow('lab-1').getByRole('button', { name: 'Open serial console' }).click();
    const rows = page.getByRole('tabpanel', { name: 'lab-1 — serial' }).locator('.xterm-rows');
    await waitUntil(async () => /Linux lab-1/.test((await rows.textContent()) ?? ''), 20_000, 'the replayed output');
    const second = await waitUntil(serialOf, 10_000, 'the new serial session');
    await new Promise((resolve) => setTimeout(resolve, 1500)); // room for the terminal's answer
    assert.equal((await serialOf())?.bytesIn, 0, `session ${second.id}: xterm.js answered a replayed query into the VM`);
  });

  test('"Open VNC console" shows a connected canvas', async () => {
    await vmRow('lab-1').getByRole('button', { name: 'Open VNC console' }).click();
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — VNC' });
    await panel.locator('.vnc-tab[data-state="connected"]').waitFor({ timeout: 30_000 });
    await panel.locator('canvas').waitFor();
    assert.match((await panel.getByRole('status').textContent()) ?? '', /Connected to QEMU \(lab-1\)/);
  });

  test('layout: with a serial and a VNC tab open, at 1024x640, 1280x800 and 1920x1080 nothing scrolls and everything is in the window', async () => {
    for (const [width, height] of [[1024, 640], [1280, 800], [1920, 1080]] as const) {
      await page.setViewportSize({ width, height });
      for (const tab of ['lab-1 — serial', 'lab-1 — VNC']) {
        await page.getByRole('tab', { name: tab }).click();
        await page.waitForTimeout(300);
        const box = async (locator: ReturnType<Page['locator']>) => (await locator.boundingBox())!;
        const scroll = await page.evaluate(() => ({ h: document.scrollingElement!.scrollHeight, w: document.scrollingElement!.scrollWidth, ih: innerHeight, iw: innerWidth, y: scrollY }));
        assert.ok(scroll.h <= scroll.ih && scroll.w <= scroll.iw && scroll.y === 0, `${width}x${height} ${tab}: the document scrolls (${JSON.stringify(scroll)})`);
        const panel = page.getByRole('tabpanel', { name: tab });
        const inside = [
          ['tab strip', page.getByRole('tablist', { name: 'Consoles' })],
          ['VM search', page.getByRole('searchbox', { name: 'Search VMs' })],
          ['console view', panel.locator(tab.endsWith('serial') ? '.terminal-view' : '.vnc-screen')],
          ['toolbar', panel.getByRole('toolbar')],
          ['status bar', page.getByRole('contentinfo', { name: 'Status bar' })],
        ] as const;
        for (const [what, locator] of inside) {
          const b = await box(locator);
          assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.width <= width + 0.5 && b.y + b.height <= height + 0.5 && b.width > 0 && b.height > 0, `${width}x${height} ${tab}: the ${what} is outside the window (${JSON.stringify(b)})`);
        }
        // The console fills its view: the terminal's rows or the VNC canvas are inside it too.
        const view = await box(panel.locator(tab.endsWith('serial') ? '.terminal-view' : '.vnc-screen'));
        const content = await box(panel.locator(tab.endsWith('serial') ? '.xterm-screen' : 'canvas'));
        assert.ok(content.x + content.width <= view.x + view.width + 1 && content.y + content.height <= view.y + view.height + 1, `${width}x${height} ${tab}: the console is cut off (${JSON.stringify({ view, content })})`);
        assert.ok(view.height > height * 0.4, `${width}x${height} ${tab}: the console view is too small (${view.height} px)`);
      }
    }
    await page.setViewportSize({ width: 1600, height: 1000 });
  });

  test('serial toolbar: find counts matches and steps through them, Save log downloads the output, Clear empties the screen', async () => {
    await page.getByRole('tab', { name: 'lab-1 — serial' }).click();
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — serial' });
    const rows = panel.locator('.xterm-rows');
    await panel.locator('.xterm').click();
    await page.keyboard.type('echo marker-one; echo marker-two');
    await page.keyboard.press('Enter');
    // The command line holds marker-two once, its output once more (rows have no newlines in textContent).
    await waitUntil(async () => ((await rows.textContent()) ?? '').split('marker-two').length - 1 >= 2, 10_000, 'the echo output');
    await page.keyboard.press('Control+Shift+E');
    const find = panel.getByRole('searchbox', { name: 'Search terminal output' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Search terminal output');
    await find.fill('marker-');
    const count = panel.locator('.match-count');
    // The command line holds two matches and its output two more.
    await waitUntil(async () => /^\d+ of 4$/.test((await count.textContent()) ?? ''), 5000, 'a match count of 4');
    const first = await count.textContent();
    await panel.getByRole('button', { name: 'Next match' }).click();
    await waitUntil(async () => (await count.textContent()) !== first, 5000, 'the next match');
    const download = page.waitForEvent('download');
    await panel.getByRole('button', { name: 'Save log' }).click();
    const file = await download;
    assert.match(file.suggestedFilename(), /^lab-1-serial-.*\.log$/);
    const saved = readFileSync((await file.path())!, 'utf8');
    assert.match(saved, /marker-one/);
    assert.match(saved, /Linux lab-1/);
    await panel.getByRole('button', { name: 'Clear terminal' }).click();
    await waitUntil(async () => !/marker-one/.test((await rows.textContent()) ?? ''), 5000, 'the screen cleared');
    await find.fill('');
  });

  test('serial toolbar: Break → SysRq h makes the guest print its SysRq help in the terminal', async () => {
    await page.getByRole('tab', { name: 'lab-1 — serial' }).click();
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — serial' });
    await panel.getByRole('button', { name: 'Clear terminal' }).click();
    await panel.locator('summary[aria-label="Break and SysRq"]').click();
    await panel.getByRole('group', { name: 'Break and SysRq' }).getByRole('button', { name: 'SysRq h' }).click();
    await waitUntil(async () => /sysrq: HELP/.test((await panel.locator('.xterm-rows').textContent()) ?? ''), 15_000, 'the SysRq help in the terminal');
    // The tty keeps the "h" as typed input: clear the line for the tests that follow.
    await panel.locator('.xterm').click();
    await page.keyboard.press('Control+U');
  });

  test('VNC toolbar: Save screenshot downloads a PNG of the VM screen; the Keys menu lists the combinations', async () => {
    await page.getByRole('tab', { name: 'lab-1 — VNC' }).click();
    const panel = page.getByRole('tabpanel', { name: 'lab-1 — VNC' });
    const download = page.waitForEvent('download');
    await panel.getByRole('button', { name: 'Save screenshot' }).click();
    const file = await download;
    assert.match(file.suggestedFilename(), /^lab-1-screen-.*\.png$/);
    const png = readFileSync((await file.path())!);
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    assert.ok(width >= 640 && height >= 400, `the VM's own resolution, not the scaled view (${width}x${height})`);
    await panel.locator('summary', { hasText: 'Keys' }).click();
    const menu = panel.getByRole('group', { name: 'Key combinations' });
    for (const combination of ['Ctrl+Alt+F1', 'Alt+Tab', 'Ctrl+Alt+Backspace', 'Alt+SysRq']) await menu.getByRole('button', { name: `Send ${combination}` }).waitFor();
    await menu.getByRole('button', { name: 'Send Ctrl+Alt+F1' }).click();
    assert.equal(await menu.isVisible(), false, 'the menu closes after sending');
    assert.match((await panel.getByRole('status').textContent()) ?? '', /Connected to QEMU/);
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
    // The main process's log (pino, JSON) has the tab's own records: its id, relay, VM and kind on each.
    const records = await waitUntil(() => {
      const lines = readFileSync(join(tmp.path, 'app', 'lifeline.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const rotation = lines.find((record) => /rotating the console key/.test(String(record.msg)));
      const tab = lines.filter((record) => rotation && record.tab === rotation.tab);
      return tab.some((record) => record.keyFingerprint === consoleAfter.keyFingerprint) ? tab : undefined;
    }, 5000, 'the tab\'s records in lifeline.log');
    // The rotation and the reconnection with the new key are the same tab's records, each naming it whole.
    assert.ok(records.every((record) => record.vm === 'lab-1' && record.kind === 'serial' && record.relay === relayId), JSON.stringify(records));
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

  test('a wrong relay token gets a clear message, in the Add relay dialog', async () => {
    await page.getByRole('button', { name: 'Add a relay' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add relay' });
    await dialog.getByRole('textbox', { name: 'Relay name' }).fill('wrong');
    await dialog.getByRole('textbox', { name: 'Relay URL' }).fill(relayUrl);
    await dialog.getByLabel('Relay API token').fill('llt_this-token-is-not-valid-0123456789');
    await dialog.getByRole('button', { name: 'Add relay' }).click();
    await waitUntil(async () => /refused the API token/.test((await dialog.getByRole('alert').textContent()) ?? ''), 10_000, 'the refusal message');
    await dialog.getByRole('textbox', { name: 'Relay URL' }).fill('http://127.0.0.1:9');
    await dialog.getByLabel('Relay API token').fill('llt_this-token-is-not-valid-0123456789');
    await dialog.getByRole('button', { name: 'Add relay' }).click();
    await waitUntil(async () => /Cannot reach the relay at http:\/\/127\.0\.0\.1:9/.test((await dialog.getByRole('alert').textContent()) ?? ''), 10_000, 'the unreachable message');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.getByRole('list', { name: 'Relays' }).getByRole('listitem').count(), 1, 'no relay was added');
  });

  test('private endpoints: created from the UI; deleting one asks first, and Cancel keeps it', async () => {
    await page.getByRole('button', { name: 'Endpoints of This computer' }).click();
    const dialog = page.getByRole('dialog', { name: 'Private endpoints of This computer' });
    await dialog.getByRole('textbox', { name: 'Endpoint name' }).fill('ops');
    await dialog.getByRole('textbox', { name: 'Endpoint IP address' }).fill('127.0.0.77');
    await dialog.getByRole('button', { name: 'Create endpoint' }).click();
    await dialog.getByRole('listitem', { name: 'ops' }).waitFor({ timeout: 10_000 });
    assert.equal((await relayApi('GET', '/v1/privateEndpoints/ops')).ipAddress, '127.0.0.77');
    await dialog.getByRole('button', { name: 'Delete endpoint ops' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete endpoint?' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await relayApi('GET', '/v1/privateEndpoints/ops')).name, 'ops', 'Cancel deleted nothing');
    await dialog.getByRole('button', { name: 'Delete endpoint ops' }).click();
    await confirm.getByRole('button', { name: 'Delete endpoint' }).click();
    await dialog.getByRole('listitem', { name: 'ops' }).waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal((await relayApi('GET', '/v1/privateEndpoints/ops')).error.code, 'EndpointNotFound');
    await dialog.getByRole('button', { name: 'Close dialog' }).click();
  });

  test('deleting a console asks first; Cancel keeps it, confirming deletes it', async () => {
    assert.equal((await relayApi('GET', '/v1/virtualMachines/lab-2/console')).enabled, true);
    await vmRow('lab-2').getByRole('button', { name: 'Delete console' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete console?' });
    assert.match((await confirm.textContent()) ?? '', /lab-2/);
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await relayApi('GET', '/v1/virtualMachines/lab-2/console')).enabled, true, 'Cancel deleted nothing');
    await vmRow('lab-2').getByRole('button', { name: 'Delete console' }).click();
    await confirm.getByRole('button', { name: 'Delete console' }).click();
    await waitUntil(async () => (await relayApi('GET', '/v1/virtualMachines/lab-2/console'))?.error?.code === 'ConsoleNotFound', 10_000, 'the console deleted');
    await waitUntil(async () => /no console/.test((await vmRow('lab-2').textContent()) ?? ''), 10_000, 'the list to show it');
  });

  test('power menu: only the actions the VM offers; Reset asks first, then the VM reboots (its banner on the serial tab)', async () => {
    const panel = await runInSerialTab(page, 'lab-2', 'echo before-$((1+1))', /before-2/);
    const rows = panel.locator('.xterm-rows');
    const banners = async (): Promise<number> => ((await rows.textContent()) ?? '').split('Enter \'help\'').length - 1;
    // The DOM holds only the visible rows: clear them, so the next banner is the reset's.
    await panel.getByRole('button', { name: 'Clear terminal' }).click();
    await waitUntil(async () => (await banners()) === 0, 5000, 'the terminal cleared');
    const before = 0;
    await vmRow('lab-2').locator('summary[aria-label="Power actions for lab-2"]').click();
    const menu = vmRow('lab-2').getByRole('group', { name: 'Power actions for lab-2' });
    assert.deepEqual(await menu.getByRole('button').allTextContents(), ['Shut down', 'Reset', 'Power off', 'Send NMI'], 'no Power on over QMP');
    // Shut down and Power off are told apart: the ACPI request, and the hard stop.
    await menu.getByRole('button', { name: 'Power off' }).click();
    const powerOff = page.getByRole('dialog', { name: 'Power off lab-2?' });
    assert.match((await powerOff.textContent()) ?? '', /stops at once, as when its power is cut/);
    await powerOff.getByRole('button', { name: 'Cancel' }).click();
    await vmRow('lab-2').locator('summary[aria-label="Power actions for lab-2"]').click();
    await menu.getByRole('button', { name: 'Shut down' }).click();
    const shutdown = page.getByRole('dialog', { name: 'Shut down lab-2?' });
    assert.match((await shutdown.textContent()) ?? '', /ACPI power button/);
    await shutdown.getByRole('button', { name: 'Cancel' }).click();
    await vmRow('lab-2').locator('summary[aria-label="Power actions for lab-2"]').click();
    await menu.getByRole('button', { name: 'Reset' }).click();
    const confirm = page.getByRole('dialog', { name: 'Reset lab-2?' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForTimeout(3000);
    assert.equal(await banners(), before, 'Cancel reset nothing');
    await vmRow('lab-2').locator('summary[aria-label="Power actions for lab-2"]').click();
    await menu.getByRole('button', { name: 'Reset' }).click();
    await confirm.getByRole('button', { name: 'Reset' }).click();
    await waitUntil(async () => (await banners()) > before, 60_000, 'the guest to boot again after the reset');
  });

  test('keyboard shortcuts: search VMs, next/previous tab, help, close tab', async () => {
    // Start from no tab, so the order is this test's own.
    const closers = page.getByRole('tablist', { name: 'Consoles' }).getByRole('button', { name: /^Close / });
    for (let open = await closers.count(); open > 0; open = await closers.count()) {
      await closers.first().click();
      await waitUntil(async () => (await closers.count()) < open, 10_000, 'the tab to close');
    }
    await vmRow('lab-1').getByRole('button', { name: 'Open serial console' }).click();
    await vmRow('lab-1').getByRole('button', { name: 'Open VNC console' }).click();
    const serialTab = page.getByRole('tab', { name: 'lab-1 — serial' });
    const vncTab = page.getByRole('tab', { name: 'lab-1 — VNC' });
    await vncTab.waitFor({ timeout: 30_000 });
    await serialTab.waitFor({ timeout: 10_000 }).catch(async () => assert.fail(`no serial tab; messages: ${await page.locator('.notice').textContent()}`));
    await serialTab.click();
    await page.getByRole('tabpanel', { name: 'lab-1 — serial' }).locator('.xterm').click();
    await page.keyboard.press('Control+Shift+F');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Search VMs');
    await page.keyboard.type('lab-2');
    await waitUntil(async () => (await vmRow('lab-1').count()) === 0 && (await vmRow('lab-2').count()) === 1, 5000, 'the search to filter the list');
    await page.keyboard.press('Escape');
    await vmRow('lab-1').waitFor();
    assert.equal(await serialTab.getAttribute('aria-selected'), 'true');
    await page.keyboard.press('Control+Shift+BracketRight');
    const tabStates = async (): Promise<string> => JSON.stringify(await page.getByRole('tab').evaluateAll((tabs) => tabs.map((t) => `${t.getAttribute('aria-label')}=${t.getAttribute('aria-selected')}`)));
    assert.equal(await vncTab.getAttribute('aria-selected'), 'true', `next tab: ${await tabStates()}`);
    await page.keyboard.press('Control+Shift+BracketLeft');
    assert.equal(await serialTab.getAttribute('aria-selected'), 'true', 'previous tab');
    await page.keyboard.press('Control+Shift+Slash');
    const help = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    assert.match((await help.textContent()) ?? '', /Ctrl\+Shift\+F.*Search VMs/);
    await page.keyboard.press('Escape');
    await help.waitFor({ state: 'detached' });
    await page.keyboard.press('Control+Shift+X');
    await serialTab.waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal(await vncTab.getAttribute('aria-selected'), 'true', 'the remaining tab is selected');
    // Keyboard only: the tab strip takes arrows and Delete.
    await vncTab.focus();
    await page.keyboard.press('Delete');
    await vncTab.waitFor({ state: 'detached', timeout: 10_000 });
    await waitUntil(async () => ((await relayApi('GET', '/v1/sessions')).value as unknown[]).length === 0, 10_000, 'the closed tabs\' sessions to end');
  });

  test('dark theme under prefers-color-scheme: dark; the theme switch overrides it', async () => {
    const theme = (): Promise<string | undefined> => page.evaluate(() => document.documentElement.dataset.theme);
    const background = (): Promise<string> => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    // The OS's change reaches the page as a media query event: give it a moment.
    const themeBecomes = (want: string): Promise<unknown> => waitUntil(async () => (await theme()) === want, 5000, `the ${want} theme`);
    await page.emulateMedia({ colorScheme: 'light' });
    await themeBecomes('light');
    const light = await background();
    await page.emulateMedia({ colorScheme: 'dark' });
    await themeBecomes('dark');
    const dark = await background();
    assert.notEqual(dark, light);
    const luminance = (rgb: string): number => rgb.match(/\d+/g)!.slice(0, 3).map(Number).reduce((a, b) => a + b, 0) / 3;
    assert.ok(luminance(dark) < 60 && luminance(light) > 200, `dark ${dark}, light ${light}`);
    await page.getByRole('combobox', { name: 'Theme' }).selectOption('light');
    assert.equal(await theme(), 'light', 'the switch wins over the OS');
    await page.reload();
    await vmRow('lab-1').waitFor({ timeout: 30_000 });
    assert.equal(await theme(), 'light', 'the choice is kept');
    await page.getByRole('combobox', { name: 'Theme' }).selectOption('system');
    await themeBecomes('dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });
});
