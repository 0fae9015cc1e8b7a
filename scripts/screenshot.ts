/**
 * Takes the README screenshot (docs/screenshot.png) in browser mode: lab VMs, the embedded
 * relay, a serial tab showing `uname -a`. Run it with `npm run screenshot` (needs a
 * Secret Service: run-tests' D-Bus wrapper provides one).
 */
import { join } from 'node:path';
import { launchChromium } from '../test/helpers/browser.js';
import { startBrowserMode } from '../test/helpers/browser-mode.js';
import { runCleanups } from '../test/helpers/cleanup.js';
import { startLab } from '../test/helpers/lab.js';
import { REPO_ROOT, testConfig } from '../test/helpers/relay-process.js';
import { tempDir } from '../test/helpers/temp.js';
import { waitUntil } from '../test/helpers/wait.js';

const tmp = tempDir('screenshot');
const lab = startLab(2);
const web = await startBrowserMode(['--relay-config', testConfig(lab.configPath, join(tmp.path, 'relay')), '--data-dir', join(tmp.path, 'app')]);
const chromium = await launchChromium();
try {
  const page = await chromium.browser.newPage({ viewport: { width: 1500, height: 820 } });
  await page.goto(web.url);
  const row = page.getByRole('list', { name: 'Virtual machines' }).getByRole('listitem', { name: 'lab-1', exact: true });
  await row.getByRole('button', { name: 'Open serial console' }).click({ timeout: 60_000 });
  const panel = page.getByRole('tabpanel', { name: 'lab-1 — serial' });
  await panel.locator('.xterm-helper-textarea').focus();
  await page.keyboard.press('Enter');
  await page.keyboard.type('uname -a');
  await page.keyboard.press('Enter');
  await waitUntil(async () => /Linux lab-1/.test((await panel.locator('.xterm-rows').textContent()) ?? ''), 30_000, 'uname output');
  await page.screenshot({ path: join(REPO_ROOT, 'docs', 'screenshot.png') });
} finally {
  await runCleanups([chromium.close, web.stop, lab.down, tmp.dispose]);
}
