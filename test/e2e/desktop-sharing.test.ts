import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import keytar from 'keytar';
import type { Page } from 'playwright-core';
import { runInSerialTab, vmRow } from '../helpers/app-page.js';
import { launchChromium } from '../helpers/browser.js';
import { startBrowserMode, type BrowserMode } from '../helpers/browser-mode.js';
import { runCleanups } from '../helpers/cleanup.js';
import { startLab, type Lab } from '../helpers/lab.js';
import { testConfig } from '../helpers/relay-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The desktop's side of a shared console, in Chromium through browser mode with a lab VM and the
 * real Secret Service: a controlling tab and a watching tab of the same VM, the relay's notices in
 * each, the buttons that move control, and the recorded badge. QEMU's chardev log says what
 * reached the guest. Screenshots of the two tabs (light and dark) go to LIFELINE_SCREENSHOTS when set.
 */
describe('desktop: watching a shared serial console, handing over control, the recorded badge', () => {
  let lab: Lab;
  let web: BrowserMode;
  let page: Page;
  let closeBrowser: (() => Promise<void>) | undefined;
  const tmp = tempDir('desktop-sharing');

  before(async () => {
    lab = startLab(1);
    const config = testConfig(lab.configPath, join(tmp.path, 'relay-data'), { recording: { serial: 'on' } });
    web = await startBrowserMode(['--relay-config', config, '--data-dir', join(tmp.path, 'app')]);
    const chromium = await launchChromium();
    closeBrowser = chromium.close;
    page = await chromium.browser.newPage({ viewport: { width: 1400, height: 860 } });
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    await page.goto(web.url);
  });
  after(() => runCleanups([() => closeBrowser?.(), () => web?.stop(), () => lab?.down(), tmp.dispose]));

  const guestSaid = (): string => readFileSync(join(lab.vmDir('lab-1'), 'serial.log'), 'latin1');
  // includeHidden: the panel of the tab not selected is hidden, and its strip is read all the same.
  const strip = (title: string) => page.getByRole('tabpanel', { name: title, exact: true, includeHidden: true }).getByRole('group', { name: 'Sharing', includeHidden: true });

  test('the owner\'s tab says it is recorded; a watching tab is labelled, its typing never reaches the guest; Ask for control, then Hand over, swap the roles', { timeout: 180_000 }, async () => {
    await vmRow(page, 'lab-1').waitFor({ timeout: 60_000 });
    await runInSerialTab(page, 'lab-1', 'echo owner-$((20+1))', /owner-21/);
    const owner = 'lab-1 — serial';
    await waitUntil(async () => (await strip(owner).getByText('Recorded', { exact: true }).isVisible()), 10_000, 'the recorded badge on the owner\'s tab');

    // The owner allows observers (as lifeline console update --allow-observers true would), with the app's token.
    const accounts = (await keytar.findCredentials('lifeline')).map((c) => c.account);
    const relayId = accounts.find((a) => a.startsWith('token:'))!.slice('token:'.length);
    const relayUrl = /Embedded relay running at (\S+)/.exec((await page.getByRole('status').first().textContent()) ?? '')![1]!;
    const token = await keytar.getPassword('lifeline', `token:${relayId}`);
    const patched = await fetch(`${relayUrl}/v1/virtualMachines/lab-1/console`, { method: 'PATCH', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ allowObservers: true }) });
    assert.equal(patched.status, 200);

    const watch = vmRow(page, 'lab-1').getByRole('button', { name: 'Watch serial console' });
    await watch.waitFor({ timeout: 15_000 });
    await watch.click();
    const watcher = 'lab-1 — serial (observing)';
    await page.getByRole('tab', { name: watcher, exact: true }).waitFor({ timeout: 30_000 });
    await waitUntil(async () => /Observing · read-only/.test((await strip(watcher).textContent()) ?? ''), 10_000, 'the observing badge');
    await waitUntil(async () => /joined as an observer/.test((await strip(owner).textContent()) ?? ''), 10_000, 'the owner told of the observer');
    if (process.env.LIFELINE_SCREENSHOTS) {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await new Promise((resolve) => setTimeout(resolve, 300));
        await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, `sharing-${scheme}.png`) });
      }
      await page.emulateMedia({ colorScheme: 'light' });
    }

    // Typed into the watching tab: the relay drops it; the guest never echoes it.
    const watcherPanel = page.getByRole('tabpanel', { name: watcher, exact: true });
    await watcherPanel.locator('.xterm').click();
    await page.keyboard.type('echo HACK-$((3*3))');
    await page.keyboard.press('Enter');
    await waitUntil(async () => /your typing is not sent/.test((await strip(watcher).textContent()) ?? ''), 10_000, 'the watcher reminded');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.doesNotMatch(guestSaid(), /HACK/);

    // The watcher asks; the owner's tab offers the hand-over; after it, the roles are swapped.
    await strip(watcher).getByRole('button', { name: 'Ask for control' }).click();
    const handOver = strip(owner).getByRole('button', { name: 'Hand over control' });
    await page.getByRole('tab', { name: owner, exact: true }).click();
    await handOver.waitFor({ timeout: 10_000 });
    await handOver.click();
    await waitUntil(async () => /Observing · read-only/.test((await strip(owner).textContent()) ?? ''), 10_000, 'the owner now observing');
    await page.getByRole('tab', { name: watcher, exact: true }).click();
    await waitUntil(async () => /In control/.test((await strip(watcher).textContent()) ?? ''), 10_000, 'the watcher in control');
    await watcherPanel.locator('.xterm').click();
    await page.keyboard.type('echo taken-$((4*4))');
    await page.keyboard.press('Enter');
    await waitUntil(() => guestSaid().includes('taken-16'), 15_000, 'the new controller\'s command ran in the guest');
  });

  test('the Recordings view lists the session once it ends and plays it: seeking to the end shows the typed commands, markers are listed, .cast export downloads it', { timeout: 120_000 }, async () => {
    for (const title of ['lab-1 — serial (observing)', 'lab-1 — serial']) {
      await page.getByRole('button', { name: `Close ${title}`, exact: true }).click();
    }
    await vmRow(page, 'lab-1').getByRole('button', { name: 'Recordings of lab-1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Recordings of lab-1' });
    await dialog.waitFor();
    // The recording with the observer and the hand-over (the list is newest first, and may hold others).
    const shared = dialog.getByRole('listitem').filter({ hasText: 'observer' }).first();
    await shared.getByRole('button', { name: /^Play the serial recording of / }).click();
    const player = dialog.locator('.cast-player');
    await player.waitFor();
    assert.ok((await dialog.getByRole('list', { name: 'Markers' }).getByRole('listitem').count()) >= 3, 'joins, the hand-over and leaves are markers');
    await dialog.getByRole('button', { name: /^Go to control to session/ }).first().click();
    const rows = player.locator('.xterm-rows');
    await waitUntil(async () => /owner-21/.test((await rows.textContent()) ?? ''), 5000, 'the owner\'s command at the hand-over marker');
    // To the end: the new controller's command is there too.
    await player.getByRole('slider', { name: 'Position in the recording' }).fill(await player.getByRole('slider').getAttribute('max') ?? '0');
    await waitUntil(async () => /taken-16/.test((await rows.textContent()) ?? ''), 5000, 'the last command at the end');
    await dialog.getByRole('combobox', { name: 'Playback speed' }).selectOption('16');
    if (process.env.LIFELINE_SCREENSHOTS) {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await new Promise((resolve) => setTimeout(resolve, 300));
        await page.screenshot({ path: join(process.env.LIFELINE_SCREENSHOTS, `recordings-${scheme}.png`) });
      }
      await page.emulateMedia({ colorScheme: 'light' });
    }
    const [download] = await Promise.all([page.waitForEvent('download'), dialog.getByRole('button', { name: 'Export .cast' }).click()]);
    const saved = join(tmp.path, 'export.cast');
    await download.saveAs(saved);
    const exported = readFileSync(saved, 'utf8');
    assert.equal(JSON.parse(exported.split('\n')[0]!).version, 2);
    assert.match(exported, /taken-16/);
  });
});
